build-unit-asan/lib/segment.o: lib/segment.c lib/segment.h lib/batch.h \
 lib/err.h lib/schema.h lib/meta.h lib/store.h lib/file.h
lib/segment.h:
lib/batch.h:
lib/err.h:
lib/schema.h:
lib/meta.h:
lib/store.h:
lib/file.h:
