build-unit-asan/lib/scan.o: lib/scan.c lib/scan.h lib/batch.h lib/err.h \
 lib/schema.h lib/idmap.h lib/root.h lib/meta.h lib/store.h lib/file.h \
 lib/log.h lib/segment.h
lib/scan.h:
lib/batch.h:
lib/err.h:
lib/schema.h:
lib/idmap.h:
lib/root.h:
lib/meta.h:
lib/store.h:
lib/file.h:
lib/log.h:
lib/segment.h:
