/*
 * Test application for an Arduino-class ATmega328P: speaks the first lines of Canopy's serial text
 * protocol (firmware-bridge/PROTOCOL.md): "hello <mcu-id> <board> <fw-version>" after boot and on
 * every "who" line. The avrdude flasher reads that banner to confirm which firmware booted.
 * MCU_ID, BOARD and FW_VERSION come from the build (make VERSION=1.2.3).
 */
#include <avr/io.h>
#include <avr/wdt.h>
#include <stdint.h>

#ifndef F_CPU
#define F_CPU 16000000UL
#endif
#ifndef MCU_ID
#define MCU_ID "avr-1"
#endif
#ifndef BOARD
#define BOARD "uno"
#endif
#ifndef FW_VERSION
#define FW_VERSION "0.0.0"
#endif

/* Optional padding so tests and the bench can flash an image of a chosen size. */
#ifdef PAD_BYTES
const uint8_t pad[PAD_BYTES] __attribute__((used, section(".progmem.data"))) = {1};
#endif

static void tx(char c) {
  while (!(UCSR0A & _BV(UDRE0))) {}
  UDR0 = c;
}

static void print(const char *s) {
  while (*s) tx(*s++);
}

static void hello(void) {
  print("hello " MCU_ID " " BOARD " " FW_VERSION "\n");
}

int main(void) {
  MCUSR = 0;
  wdt_disable();
  /* 115200 baud at 16 MHz: U2X, UBRR 16 (what the Arduino core uses). */
  UCSR0A = _BV(U2X0);
  UBRR0 = (F_CPU / 8 / 115200) - 1;
  UCSR0B = _BV(RXEN0) | _BV(TXEN0);
  UCSR0C = _BV(UCSZ01) | _BV(UCSZ00);
  hello();
  char line[16];
  uint8_t n = 0;
  for (;;) {
    if (!(UCSR0A & _BV(RXC0))) continue;
    char c = UDR0;
    if (c == '\r') continue;
    if (c != '\n') {
      if (n < sizeof line - 1) line[n++] = c;
      continue;
    }
    line[n] = 0;
    if (n == 3 && line[0] == 'w' && line[1] == 'h' && line[2] == 'o') hello();
    n = 0;
  }
}
