build-unit-asan/t/unit/log.o: t/unit/log.c lib/batch.h lib/err.h \
 lib/schema.h lib/crc32c.h lib/file.h lib/log.h t/unit/unit.h
lib/batch.h:
lib/err.h:
lib/schema.h:
lib/crc32c.h:
lib/file.h:
lib/log.h:
t/unit/unit.h:
