build-unit-asan/lib/record.o: lib/record.c lib/record.h lib/batch.h \
 lib/err.h lib/schema.h lib/file.h
lib/record.h:
lib/batch.h:
lib/err.h:
lib/schema.h:
lib/file.h:
