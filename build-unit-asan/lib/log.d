build-unit-asan/lib/log.o: lib/log.c lib/log.h lib/err.h lib/batch.h \
 lib/schema.h lib/crc32c.h lib/file.h
lib/log.h:
lib/err.h:
lib/batch.h:
lib/schema.h:
lib/crc32c.h:
lib/file.h:
