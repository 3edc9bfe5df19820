build-unit-asan/lib/seal.o: lib/seal.c lib/seal.h lib/err.h lib/log.h \
 lib/root.h lib/meta.h lib/schema.h lib/store.h lib/batch.h lib/file.h \
 lib/segment.h
lib/seal.h:
lib/err.h:
lib/log.h:
lib/root.h:
lib/meta.h:
lib/schema.h:
lib/store.h:
lib/batch.h:
lib/file.h:
lib/segment.h:
