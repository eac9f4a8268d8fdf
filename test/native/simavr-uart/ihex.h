#ifndef SIMAVR_UART_IHEX_H
#define SIMAVR_UART_IHEX_H
#include <stdint.h>

/* Loads an Intel HEX file into `flash` (size bytes); the lowest address written goes to *base.
 * Returns 0, or -1 after printing why on stderr. */
int load_hex(const char *path, uint8_t *flash, uint32_t size, uint32_t *base);

#endif
