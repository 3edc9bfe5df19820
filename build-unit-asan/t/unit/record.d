build-unit-asan/t/unit/record.o: t/unit/record.c lib/file.h lib/err.h \
 lib/record.h lib/batch.h lib/schema.h t/unit/unit.h
lib/file.h:
lib/err.h:
lib/record.h:
lib/batch.h:
lib/schema.h:
t/unit/unit.h:
