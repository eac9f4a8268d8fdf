/*
 * simavr-uart: an ATmega328P (or another simavr part) running a bootloader, its UART0 on a pty.
 * Stands in for an Arduino Uno on a USB serial adapter, so avrdude (STK500 / optiboot) can be tested
 * without hardware.
 *
 *   simavr-uart --boot optiboot_atmega328.hex [--mcu atmega328p] [--freq 16000000] [--link PATH]
 *
 * Prints "pty <slave path>" on stdout once the port is ready, then runs until SIGTERM/SIGINT or its
 * parent dies. What makes avrdude work against it (each found the hard way):
 *  - reset_pc is the bootloader's base (the BOOTRST fuse) and MCUSR = EXTRF after a host-side reset,
 *    so optiboot stays in the bootloader instead of jumping to the application;
 *  - an Uno resets when a host opens its port (DTR); a pty has no DTR, so the harness watches the
 *    slave with inotify and resets the core into the bootloader on every open by another process;
 *  - the CPU is held until the host first opens the port (or sends), otherwise optiboot's 1 s
 *    watchdog expires and it jumps to an empty application before avrdude has synced;
 *  - the harness keeps its own fd on the pty slave open, so the master never sees a hangup between two
 *    host programs (avrdude closing, the flasher opening) and the app's banner waits in the tty buffer;
 *  - the pty is pumped from the simulation thread itself. simavr's own uart_pty part (Debian 1.6) reads
 *    its fifo from two threads without a lock; a burst of a few hundred bytes into a running app
 *    stalled the link for good. avrdude's request/response traffic never filled that fifo, a raw write did;
 *  - the core is throttled to real time, so timeouts behave as on hardware and the simulator does not
 *    burn a whole host core.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pty.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <sim_avr.h>
#include <avr_uart.h>

#include "ihex.h"

#define MCUSR_ADDR 0x54 /* I/O 0x34 */
#define EXTRF 0x02
#define FLASH_TAIL 256

static int master = -1;
static avr_irq_t *uart_rx; /* into the MCU's UART */
static int xon;            /* the UART has room for another byte */
static uint8_t rxq[512];   /* host -> MCU, read from the pty, not yet taken by the UART */
static size_t rx_len, rx_off;
static uint8_t txq[8192];  /* MCU -> host, not yet written to the pty (bounded: dropped when full) */
static size_t tx_len;
static volatile sig_atomic_t stop;
static uint32_t boot_base;
static avr_t *avr;
static int trace;
static int opens = -1; /* inotify fd: the host opening the pty */

static void on_mcu_byte(struct avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq; (void)param;
  if (trace) fprintf(stderr, "< %02x pc=%x\n", value, avr->pc);
  if (tx_len < sizeof txq) txq[tx_len++] = (uint8_t)value;
}

static void on_xon(struct avr_irq_t *irq, uint32_t value, void *param) { (void)irq; (void)value; (void)param; xon = 1; }
static void on_xoff(struct avr_irq_t *irq, uint32_t value, void *param) { (void)irq; (void)value; (void)param; xon = 0; }

static void on_signal(int sig) { (void)sig; stop = 1; }

/* Moves bytes between the pty and the UART; called between slices of simulation, same thread. */
static void pump(void) {
  if (rx_off == rx_len) {
    ssize_t r = read(master, rxq, sizeof rxq);
    rx_off = 0;
    rx_len = r > 0 ? (size_t)r : 0;
  }
  /* The UART raises XOFF (synchronously, inside the raise) when its input fifo is full. */
  while (xon && rx_off < rx_len) {
    uint8_t b = rxq[rx_off++];
    if (trace) fprintf(stderr, "> %02x pc=%x\n", b, avr->pc);
    avr_raise_irq(uart_rx, b);
  }
  if (tx_len > 0) {
    ssize_t w = write(master, txq, tx_len);
    if (w > 0) {
      memmove(txq, txq + w, tx_len - (size_t)w);
      tx_len -= (size_t)w;
    }
  }
}

/* Something from the host is waiting: the first byte releases the hold. */
static int host_waiting(void) {
  if (rx_off < rx_len) return 1;
  ssize_t r = read(master, rxq, sizeof rxq);
  if (r <= 0) return 0;
  rx_off = 0;
  rx_len = (size_t)r;
  return 1;
}

/* An Uno resets when a host opens its port (DTR pulls RESET low through a capacitor). A pty has no
 * DTR, so an open of the slave seen by inotify stands in for it. */
static int host_opened(void) {
  char buf[sizeof(struct inotify_event) + 64];
  int seen = 0;
  while (read(opens, buf, sizeof buf) > 0) seen = 1;
  return seen;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void reset_into_bootloader(void) {
  avr_reset(avr);
  avr->data[MCUSR_ADDR] = EXTRF;
  fprintf(stderr, "simavr-uart: reset into the bootloader at 0x%x\n", boot_base);
}

static void usage(void) {
  fprintf(stderr, "usage: simavr-uart --boot FILE.hex [--mcu atmega328p] [--freq HZ] [--link PATH]\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *boot = NULL, *mcu = "atmega328p", *link_path = NULL;
  unsigned long freq = 16000000;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (i + 1 >= argc) usage();
    if (!strcmp(a, "--boot")) boot = argv[++i];
    else if (!strcmp(a, "--mcu")) mcu = argv[++i];
    else if (!strcmp(a, "--freq")) freq = strtoul(argv[++i], NULL, 10);
    else if (!strcmp(a, "--link")) link_path = argv[++i];
    else usage();
  }
  if (!boot || freq == 0) usage();
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);

  avr = avr_make_mcu_by_name(mcu);
  if (!avr) { fprintf(stderr, "simavr-uart: unknown mcu %s\n", mcu); return 1; }
  avr_init(avr);
  avr->frequency = (uint32_t)freq;

  /* Debian's optiboot_atmega328.hex (arduino-core-avr 1.8.7) is 532 bytes: its last 20 bytes (the
   * appStart routine, reached by `rcall 0x8004`) lie past the end of the 32 KiB flash. Keep a tail of
   * flash beyond flashend so the bootloader runs as compiled; the application area is unaffected. */
  uint32_t flash_size = avr->flashend + 1;
  uint8_t *flash = realloc(avr->flash, flash_size + FLASH_TAIL);
  if (!flash) return 1;
  memset(flash + flash_size, 0xff, FLASH_TAIL);
  avr->flash = flash;
  if (load_hex(boot, avr->flash, flash_size + FLASH_TAIL, &boot_base) != 0) return 1;
  avr->reset_pc = boot_base;
  avr->codeend = avr->flashend + FLASH_TAIL;

  char slavename[128];
  int slave;
  if (openpty(&master, &slave, slavename, NULL, NULL) < 0) {
    fprintf(stderr, "simavr-uart: openpty: %s\n", strerror(errno));
    return 1;
  }
  close(slave);
  fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
  /* Off: the UART's echo of output lines to our stdout (the link is binary), and its usleep(1) on
   * every idle poll of UCSR0A, which made the core fall seconds behind real time (we throttle instead). */
  uint32_t f = 0;
  avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS('0'), &f);
  f &= ~(uint32_t)(AVR_UART_FLAG_STDIO | AVR_UART_FLAG_POLL_SLEEP);
  avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &f);
  uart_rx = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT), on_mcu_byte, NULL);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON), on_xon, NULL);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XOFF), on_xoff, NULL);
  trace = getenv("SIMAVR_UART_TRACE") && atoi(getenv("SIMAVR_UART_TRACE"));

  int keep = open(slavename, O_RDWR | O_NOCTTY);
  if (keep < 0) { fprintf(stderr, "simavr-uart: open %s: %s\n", slavename, strerror(errno)); return 1; }
  struct termios tio;
  tcgetattr(keep, &tio);
  cfmakeraw(&tio);
  tcsetattr(keep, TCSANOW, &tio);
  if (link_path) {
    unlink(link_path);
    if (symlink(slavename, link_path) != 0) {
      fprintf(stderr, "simavr-uart: symlink %s: %s\n", link_path, strerror(errno));
      return 1;
    }
  }
  /* After our own open, so only the host's opens count. */
  opens = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (opens < 0 || inotify_add_watch(opens, slavename, IN_OPEN) < 0) {
    fprintf(stderr, "simavr-uart: inotify on %s: %s\n", slavename, strerror(errno));
    return 1;
  }
  printf("pty %s\n", slavename);
  fflush(stdout);

  reset_into_bootloader();
  while (!stop && !host_opened() && !host_waiting()) usleep(1000);

  uint64_t wall0 = now_ns();
  uint64_t sim_ns = 0;
  avr_cycle_count_t last_cycle = avr->cycle;
  int in_app = 0;
  uint64_t last_report = 0;
  while (!stop) {
    if (host_opened()) {
      reset_into_bootloader();
      last_cycle = avr->cycle;
    }
    if (avr->state == cpu_Crashed || avr->state == cpu_Done) {
      tx_len = 0;
      rx_off = rx_len;
      usleep(1000);
      continue;
    }
    for (int k = 0; k < 4096; k++) avr_run(avr);
    pump();
    /* avr->cycle restarts at 0 on every reset (watchdog included). */
    avr_cycle_count_t cyc = avr->cycle;
    avr_cycle_count_t d = cyc >= last_cycle ? cyc - last_cycle : cyc;
    last_cycle = cyc;
    sim_ns += d * 1000000000ull / freq;
    uint64_t wall = now_ns() - wall0;
    if (sim_ns > wall + 2000000) usleep((useconds_t)((sim_ns - wall) / 1000));
    if (trace && wall / 1000000000ull != last_report) {
      last_report = wall / 1000000000ull;
      fprintf(stderr, "status pc=%x state=%d cycle=%llu sim=%llums wall=%llums xon=%d\n", avr->pc, avr->state,
              (unsigned long long)avr->cycle, (unsigned long long)(sim_ns / 1000000), (unsigned long long)(wall / 1000000), xon);
    }
    int app = avr->pc < boot_base;
    if (app != in_app) {
      in_app = app;
      fprintf(stderr, "simavr-uart: %s\n", app ? "application running" : "bootloader running");
    }
    if (avr->state == cpu_Crashed) fprintf(stderr, "simavr-uart: core crashed at pc 0x%x\n", avr->pc);
  }
  if (link_path) unlink(link_path);
  close(keep);
  close(master);
  avr_terminate(avr);
  return 0;
}
