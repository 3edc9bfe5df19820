build-unit-asan/lib/idmap.o: lib/idmap.c lib/idmap.h
lib/idmap.h:
