/* crc32c.h: CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * checksum of log frames (formats/log.md).  No Debian package ships a C
 * CRC-32C, so this is the one checksum we carry ourselves: SSE4.2 when the
 * CPU has it, a table otherwise. */
#ifndef VDB_CRC32C_H
#define VDB_CRC32C_H
#include <stddef.h>
#include <stdint.h>

/* crc32c: checksum of buf; pass 0 as crc to start, the previous result to
 * continue.  crc32c(0, "123456789", 9) == 0xE3069283. */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

#endif
