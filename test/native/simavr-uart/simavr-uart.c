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
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <sim_avr.h>
#include <avr_uart.h>
#include <uart_pty.h>

#define MCUSR_ADDR 0x54 /* I/O 0x34 */
#define EXTRF 0x02
#define FLASH_TAIL 256

static uart_pty_t uart;
static volatile sig_atomic_t stop;
static uint32_t boot_base;
static avr_t *avr;
static int trace;
static int opens = -1; /* inotify fd: the host opening the pty */

static void on_mcu_byte(struct avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq; (void)param;
  fprintf(stderr, "< %02x pc=%x\n", value, avr->pc);
}

static void on_signal(int sig) { (void)sig; stop = 1; }

/* Every byte the host sends to the MCU (traced with SIMAVR_UART_TRACE=1). */
static void on_host_byte(struct avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq; (void)param;
  fprintf(stderr, "> %02x pc=%x\n", value, avr->pc);
}

/* Bytes arrive into uart_pty's fifo before the core takes them; the first one releases the hold. */
static int host_waiting(void) { return uart.pty.out.read != uart.pty.out.write; }

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

static int hexval(const char *s, int n) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    char c = s[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

/* Intel HEX into flash (data, extended segment/linear address, EOF; start-address records ignored:
 * simavr's own reader rejects the type 03 record optiboot's file carries). Lowest address -> *base. */
static int load_hex(const char *path, uint8_t *flash, uint32_t size, uint32_t *base) {
  FILE *f = fopen(path, "r");
  if (!f) { fprintf(stderr, "simavr-uart: open %s: %s\n", path, strerror(errno)); return -1; }
  char line[600];
  uint32_t upper = 0, lowest = UINT32_MAX;
  int lineno = 0, rc = -1;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    if (line[0] != ':') continue;
    int len = hexval(line + 1, 2), addr = hexval(line + 3, 4), type = hexval(line + 7, 2);
    if (len < 0 || addr < 0 || type < 0 || (int)strlen(line) < 11 + 2 * len) goto bad;
    uint8_t sum = (uint8_t)(len + (addr >> 8) + addr + type);
    uint8_t data[256];
    for (int i = 0; i <= len; i++) {
      int b = hexval(line + 9 + 2 * i, 2);
      if (b < 0) goto bad;
      if (i < len) data[i] = (uint8_t)b;
      sum += (uint8_t)b;
    }
    if (sum != 0) goto bad;
    if (type == 0) {
      uint32_t at = upper + (uint32_t)addr;
      if (at + (uint32_t)len > size) { fprintf(stderr, "simavr-uart: %s:%d beyond flash\n", path, lineno); goto out; }
      memcpy(flash + at, data, (size_t)len);
      if (at < lowest) lowest = at;
    } else if (type == 1) {
      break;
    } else if (type == 2 && len == 2) {
      upper = (uint32_t)((data[0] << 8) | data[1]) << 4;
    } else if (type == 4 && len == 2) {
      upper = (uint32_t)((data[0] << 8) | data[1]) << 16;
    }
  }
  if (lowest == UINT32_MAX) { fprintf(stderr, "simavr-uart: %s holds no data\n", path); goto out; }
  *base = lowest;
  rc = 0;
  goto out;
bad:
  fprintf(stderr, "simavr-uart: %s:%d is not Intel HEX\n", path, lineno);
out:
  fclose(f);
  return rc;
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

  /* uart_pty prints its own chatter on stdout; keep stdout for our one line. */
  int saved_stdout = dup(STDOUT_FILENO);
  dup2(STDERR_FILENO, STDOUT_FILENO);
  uart_pty_init(avr, &uart);
  uart_pty_connect(&uart, '0');
  fflush(stdout);
  dup2(saved_stdout, STDOUT_FILENO);
  close(saved_stdout);
  if (!uart.pty.s) { fprintf(stderr, "simavr-uart: no pty\n"); return 1; }
  trace = getenv("SIMAVR_UART_TRACE") && atoi(getenv("SIMAVR_UART_TRACE"));
  if (trace) {
    avr_irq_register_notify(uart.irq + IRQ_UART_PTY_BYTE_OUT, on_host_byte, NULL);
    avr_irq_register_notify(uart.irq + IRQ_UART_PTY_BYTE_IN, on_mcu_byte, NULL);
  }

  int keep = open(uart.pty.slavename, O_RDWR | O_NOCTTY);
  if (keep < 0) { fprintf(stderr, "simavr-uart: open %s: %s\n", uart.pty.slavename, strerror(errno)); return 1; }
  struct termios tio;
  tcgetattr(keep, &tio);
  cfmakeraw(&tio);
  tcsetattr(keep, TCSANOW, &tio);
  if (link_path) {
    unlink(link_path);
    if (symlink(uart.pty.slavename, link_path) != 0) {
      fprintf(stderr, "simavr-uart: symlink %s: %s\n", link_path, strerror(errno));
      return 1;
    }
  }
  /* After our own open, so only the host's opens count. */
  opens = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (opens < 0 || inotify_add_watch(opens, uart.pty.slavename, IN_OPEN) < 0) {
    fprintf(stderr, "simavr-uart: inotify on %s: %s\n", uart.pty.slavename, strerror(errno));
    return 1;
  }
  printf("pty %s\n", uart.pty.slavename);
  fflush(stdout);

  reset_into_bootloader();
  while (!stop && !host_opened() && !host_waiting()) usleep(1000);

  uint64_t wall0 = now_ns();
  uint64_t sim_ns = 0;
  avr_cycle_count_t last_cycle = avr->cycle;
  int in_app = 0;
  while (!stop) {
    if (host_opened()) {
      reset_into_bootloader();
      last_cycle = avr->cycle;
    }
    if (avr->state == cpu_Crashed || avr->state == cpu_Done) {
      usleep(1000);
      continue;
    }
    for (int k = 0; k < 4096; k++) avr_run(avr);
    /* avr->cycle restarts at 0 on every reset (watchdog included). */
    avr_cycle_count_t cyc = avr->cycle;
    avr_cycle_count_t d = cyc >= last_cycle ? cyc - last_cycle : cyc;
    last_cycle = cyc;
    sim_ns += d * 1000000000ull / freq;
    uint64_t wall = now_ns() - wall0;
    if (sim_ns > wall + 2000000) usleep((useconds_t)((sim_ns - wall) / 1000));
    int app = avr->pc < boot_base;
    if (app != in_app) {
      in_app = app;
      fprintf(stderr, "simavr-uart: %s\n", app ? "application running" : "bootloader running");
    }
    if (avr->state == cpu_Crashed) fprintf(stderr, "simavr-uart: core crashed at pc 0x%x\n", avr->pc);
  }
  if (link_path) unlink(link_path);
  close(keep);
  uart_pty_stop(&uart);
  avr_terminate(avr);
  return 0;
}
