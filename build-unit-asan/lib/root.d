build-unit-asan/lib/root.o: lib/root.c lib/root.h lib/err.h lib/meta.h \
 lib/schema.h lib/store.h lib/file.h
lib/root.h:
lib/err.h:
lib/meta.h:
lib/schema.h:
lib/store.h:
lib/file.h:
