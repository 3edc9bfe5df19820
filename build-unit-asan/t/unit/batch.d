build-unit-asan/t/unit/batch.o: t/unit/batch.c lib/batch.h lib/err.h \
 lib/schema.h lib/file.h
lib/batch.h:
lib/err.h:
lib/schema.h:
lib/file.h:
