build-unit-asan/t/unit/idmap.o: t/unit/idmap.c lib/idmap.h
lib/idmap.h:
