build-unit/t/unit/store.o: t/unit/store.c lib/store.h lib/err.h \
 t/unit/unit.h
lib/store.h:
lib/err.h:
t/unit/unit.h:
