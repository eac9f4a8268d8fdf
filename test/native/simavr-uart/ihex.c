/* Intel HEX reader for the simavr harness (see ihex.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ihex.h"

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
int load_hex(const char *path, uint8_t *flash, uint32_t size, uint32_t *base) {
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
