build-unit-asan/t/unit/meta.o: t/unit/meta.c lib/meta.h lib/err.h \
 lib/schema.h t/unit/unit.h
lib/meta.h:
lib/err.h:
lib/schema.h:
t/unit/unit.h:
