build-unit-asan/t/unit/crc32c.o: t/unit/crc32c.c lib/crc32c.h
lib/crc32c.h:
