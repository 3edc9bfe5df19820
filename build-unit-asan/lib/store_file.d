build-unit-asan/lib/store_file.o: lib/store_file.c lib/file.h lib/err.h \
 lib/store.h
lib/file.h:
lib/err.h:
lib/store.h:
