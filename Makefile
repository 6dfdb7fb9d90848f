# softmm build. `make` builds the release library and tool; `make test`
# installs what is missing, builds a release and an ASan+UBSan debug build,
# and runs every test; `make run` runs the main job (the comparison).
#
# Build trees:  build/        release (-O2), what benchmarks use
#               build/asan/   SMM_DEBUG lock assertions + ASan + UBSan
#               build/count/  release + SMM_COUNT_ATOMICS (atomic RMWs
#                             counted: `build/count/softmm bench --atomics`)

CC      ?= gcc
PREFIX  ?= /usr/local
VERSION := 0.1.0

WARN    := -Wall -Wextra -Werror -Wno-unused-parameter
# -MMD -MP: each object gets a .d file naming the headers it includes, so
# that a header change rebuilds exactly what depends on it.
DEPFLAGS := -MMD -MP
BASE    := -std=gnu11 -g -pthread -fPIC -fvisibility=hidden -Iinclude -Isrc $(WARN)
RELFLAGS  := $(BASE) -O2
ASANFLAGS := $(BASE) -O1 -DSMM_DEBUG -fno-omit-frame-pointer \
             -fsanitize=address,undefined -fno-sanitize-recover=undefined
# liburcu linked statically into the tool and tests: its read-side lock
# then reaches its thread-local state without __tls_get_addr.
LIBS    := -l:liburcu-memb.a -l:liburcu-common.a -lpthread -lcmocka
# ThreadSanitizer builds keep the shared liburcu: tests/tsan.supp names it.
DYNLIBS := -lurcu-memb -lurcu-common -lpthread -lcmocka

SRC      := $(wildcard src/*.c)
TOOLSRC  := $(wildcard tools/*.c)
TOOLHDR  := $(wildcard tools/*.h)
TESTSRC  := $(wildcard tests/test_*.c)
TESTS    := $(patsubst tests/%.c,%,$(TESTSRC))

REL_OBJ  := $(patsubst src/%.c,build/obj/%.o,$(SRC))
ASAN_OBJ := $(patsubst src/%.c,build/asan/obj/%.o,$(SRC))
# A library with a bug put in on purpose (the VMA recheck removed): the
# torture test must catch it.
BUGFLAGS := $(ASANFLAGS) -DSMM_BUG_NO_VMA_RECHECK
BUG_OBJ  := $(patsubst src/%.c,build/bug/obj/%.o,$(SRC))

.PHONY: all deps test run install clean check-release check-asan tool-tests \
	format format-check
all: build/libsoftmm.a build/libsoftmm.so build/softmm build/softmm.pc

deps:
	@scripts/install-deps.sh

build/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(RELFLAGS) $(DEPFLAGS) $(CFLAGS) -c $< -o $@
build/asan/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ASANFLAGS) $(DEPFLAGS) $(CFLAGS) -c $< -o $@

build/bug/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(BUGFLAGS) $(DEPFLAGS) $(CFLAGS) -c $< -o $@
build/bug/libsoftmm.a: $(BUG_OBJ)
	@rm -f $@; ar rcs $@ $^
build/bug/softmm: $(TOOLSRC) $(TOOLHDR) build/bug/libsoftmm.a
	$(CC) $(ASANFLAGS) $(CFLAGS) -Itools $(TOOLSRC) build/bug/libsoftmm.a -o $@ $(LIBS)

# The planted bugs after the first: planted_bug N,SRC,DEFINES,TEST makes
# build/bugN/libsoftmm.a, the ASan build with the files SRC compiled again
# with DEFINES, and links against it the tool (build/bugN/softmm, a pattern
# rule) or, if TEST is given, tests/TEST.c (build/bugN/tests/TEST).
define planted_bug
BUG$(1)_OBJ := $$(filter-out $$(patsubst src/%.c,build/asan/obj/%.o,$(2)),$$(ASAN_OBJ)) \
               $$(patsubst src/%.c,build/bug$(1)/obj/%.o,$(2))
build/bug$(1)/obj/%.o: src/%.c
	@mkdir -p $$(dir $$@)
	$$(CC) $$(ASANFLAGS) $(3) $$(DEPFLAGS) $$(CFLAGS) -c $$< -o $$@
build/bug$(1)/libsoftmm.a: $$(BUG$(1)_OBJ)
	@rm -f $$@; ar rcs $$@ $$^
ifneq ($(4),)
build/bug$(1)/tests/$(4): tests/$(4).c tests/*.h build/bug$(1)/libsoftmm.a
	@mkdir -p $$(dir $$@)
	$$(CC) $$(ASANFLAGS) $$(CFLAGS) -Itests $$< build/bug$(1)/libsoftmm.a -o $$@ $$(LIBS)
endif
endef
build/bug%/softmm: $(TOOLSRC) $(TOOLHDR) build/bug%/libsoftmm.a
	$(CC) $(ASANFLAGS) $(CFLAGS) -Itools $(TOOLSRC) build/bug$*/libsoftmm.a -o $@ $(LIBS)

# The planted bugs of schemes refcount and pmd-rwsem (docs/SCHEMES.md): a
# walker that skips pte_try_get(), a free done without the write side. Each
# changes only its own scheme, so one build carries both; it is the ASan
# build with the two scheme files compiled again.
$(eval $(call planted_bug,2,src/pt_scheme_refcount.c src/pt_scheme_pmd_rwsem.c,-DSMM_BUG_REFCOUNT_NO_TRYGET -DSMM_BUG_PMD_RWSEM_NO_WRITE,))

# The planted bug of the reverse map (issue 13): page_mkclean() skips the
# first shared mapping of a page, which stays writable while writeback
# cleans the page; the file torture must find the store that is lost. The
# ASan build with rmap.c compiled again.
$(eval $(call planted_bug,3,src/rmap.c,-DSMM_BUG_MKCLEAN_SKIP,))

# The planted bug of fork (issue 14): copy_present_pte() shares a page that
# may be DMA-pinned instead of copying it for the child, so the device's
# writes through the pin reach the child (or, once the parent copies on
# write, no longer reach the parent); the fork torture must find it. The
# ASan build with fork.c compiled again.
$(eval $(call planted_bug,4,src/fork.c,-DSMM_BUG_FORK_SHARES_PINNED,))

# The planted bug of mremap (issue 14): a move, of a whole table or of
# single entries, does not ask for the TLB flush, so CPUs keep translating
# the old addresses after mremap returned; test_mremap's move race must
# find a read that succeeds there. The ASan build with mremap.c compiled
# again, and that test linked against it.
$(eval $(call planted_bug,5,src/mremap.c,-DSMM_BUG_MREMAP_NO_FLUSH,test_mremap))

# The planted bug of GUP-fast vs fork (issue 14): GUP-fast does not check
# mm->write_protect_seq, so it can pin a page fork is sharing with the
# child; test_fork's deterministic race must see the device's write reach
# the child. The ASan build with gup.c compiled again, that test linked.
$(eval $(call planted_bug,6,src/gup.c,-DSMM_BUG_GUP_NO_WP_SEQ,test_fork))

# The planted bug of access sections (issue 15): a TLB shootdown that does
# not wait for CPUs inside an access section; test_access must see a
# munmap return under a section's pointer and stores land after
# mprotect(PROT_READ). The ASan build with tlb.c compiled again.
$(eval $(call planted_bug,7,src/tlb.c,-DSMM_BUG_FLUSH_NO_WAIT,test_access))

# The planted bug of userfaultfd: smm_uffd_copy() and zeropage check that
# the entry is none before taking the PTE lock instead of under it, so a
# copy racing another (two handlers, or a callback in two faulting
# threads) replaces a page a worker already stored to; the uffd torture
# must find the store that is lost. The ASan build with uffd.c compiled
# again.
$(eval $(call planted_bug,8,src/uffd.c,-DSMM_BUG_UFFD_NO_RECHECK,))

# The planted bug of the faulting side's wait: a queued fault sleeps on its
# futex without first saying so (W_SLEEPING), so a waker that comes after
# skips the futex call and the fault sleeps for good; the uffd torture
# must find a worker that never returns once everything is unregistered.
# The ASan build with uffd_wait.c compiled again.
$(eval $(call planted_bug,9,src/uffd_wait.c,-DSMM_BUG_UFFD_LOST_WAKE,))

# The planted bug of munmap under the read lock: free_pgd_range() walks the
# upper tables outside an RCU read section, so a DONTNEED beside it (eager,
# pmd-rwsem) can free a PMD table munmap is about to lock; test_reclaim's
# deterministic race must see it back in the pool (free_pmd_range()'s
# assertion). The ASan build with pgtable.c compiled again.
$(eval $(call planted_bug,10,src/pgtable.c,-DSMM_BUG_FREE_PGD_NO_RCU,test_reclaim))

# The planted bug of populate waiting for userfaultfd: after the wait,
# mm_populate() goes on with the VMA it held before it dropped mmap_lock,
# which test_uffd's handler has unmapped and RCU freed meanwhile; ASan
# must see the read. The ASan build with fault.c compiled again.
$(eval $(call planted_bug,11,src/fault.c,-DSMM_BUG_POPULATE_STALE_VMA,test_uffd))

# The counter build: the release flags, and every atomic read-modify-write
# of the library counted per thread (src/compiler.h). Not built by `make`.
COUNTFLAGS := $(RELFLAGS) -DSMM_COUNT_ATOMICS
COUNT_OBJ  := $(patsubst src/%.c,build/count/obj/%.o,$(SRC))
build/count/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(COUNTFLAGS) $(DEPFLAGS) $(CFLAGS) -c $< -o $@
build/count/libsoftmm.a: $(COUNT_OBJ)
	@rm -f $@; ar rcs $@ $^
build/count/softmm: $(TOOLSRC) $(TOOLHDR) build/count/libsoftmm.a
	$(CC) $(COUNTFLAGS) $(CFLAGS) -Itools $(TOOLSRC) build/count/libsoftmm.a -o $@ $(LIBS)

build/libsoftmm.a: $(REL_OBJ)
	@rm -f $@; ar rcs $@ $^
build/asan/libsoftmm.a: $(ASAN_OBJ)
	@rm -f $@; ar rcs $@ $^
build/libsoftmm.so: $(REL_OBJ)
	$(CC) -shared -pthread -Wl,-soname,libsoftmm.so.0 -o $@ $^ -lurcu-memb -lurcu-common

build/softmm: $(TOOLSRC) $(TOOLHDR) build/libsoftmm.a
	$(CC) $(RELFLAGS) $(CFLAGS) -Itools $(TOOLSRC) build/libsoftmm.a -o $@ $(LIBS)
build/asan/softmm: $(TOOLSRC) $(TOOLHDR) build/asan/libsoftmm.a
	$(CC) $(ASANFLAGS) $(CFLAGS) -Itools $(TOOLSRC) build/asan/libsoftmm.a -o $@ $(LIBS)

build/tests/%: tests/%.c tests/*.h build/libsoftmm.a
	@mkdir -p $(dir $@)
	$(CC) $(RELFLAGS) $(CFLAGS) -Itests $< build/libsoftmm.a -o $@ $(LIBS)
build/asan/tests/%: tests/%.c tests/*.h build/asan/libsoftmm.a
	@mkdir -p $(dir $@)
	$(CC) $(ASANFLAGS) $(CFLAGS) -Itests $< build/asan/libsoftmm.a -o $@ $(LIBS)

build/softmm.pc: Makefile
	@mkdir -p build
	@printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: softmm\nDescription: Linux-style virtual memory management in user space\nVersion: %s\nRequires.private: liburcu-memb\nLibs: -L$${libdir} -lsoftmm\nLibs.private: -lurcu-memb -lurcu-common -lpthread\nCflags: -I$${includedir}\n' '$(PREFIX)' '$(VERSION)' > $@

install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 build/libsoftmm.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 build/libsoftmm.so $(DESTDIR)$(PREFIX)/lib/libsoftmm.so.$(VERSION)
	ln -sf libsoftmm.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libsoftmm.so.0
	ln -sf libsoftmm.so.0 $(DESTDIR)$(PREFIX)/lib/libsoftmm.so
	install -m 644 include/softmm.h $(DESTDIR)$(PREFIX)/include/
	@# softmm.pc names the prefix installed to, whatever `make all` used
	sed 's|^prefix=.*|prefix=$(PREFIX)|' build/softmm.pc > $(DESTDIR)$(PREFIX)/lib/pkgconfig/softmm.pc
	install -m 755 build/softmm $(DESTDIR)$(PREFIX)/bin/

check-release: $(addprefix build/tests/,$(TESTS)) build/softmm
	@true
check-asan: $(addprefix build/asan/tests/,$(TESTS)) build/asan/softmm build/bug/softmm \
	build/bug2/softmm build/bug3/softmm build/bug4/softmm \
	build/bug5/tests/test_mremap build/bug6/tests/test_fork \
	build/bug7/tests/test_access build/bug8/softmm build/bug9/softmm \
	build/bug10/tests/test_reclaim build/bug11/tests/test_uffd
	@true

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory check-release check-asan
	@scripts/test-all.sh

# ---- style: .clang-format (kernel style) ----
# The check needs the clang-format the style was settled with (Debian 12's,
# version 14): other versions break lines differently. With another one it
# says so and checks nothing, rather than fail on a difference of versions.
CLANG_FORMAT ?= $(shell command -v clang-format-14 || command -v clang-format)
FORMAT_SRC   := $(wildcard src/*.[ch] include/*.h tools/*.[ch] tests/*.[ch] tests/fuzz/*.[ch])
format:
	$(CLANG_FORMAT) -i $(FORMAT_SRC)
format-check:
	@v=$$($(CLANG_FORMAT) --version 2>/dev/null | sed -n 's/.*version \([0-9]*\).*/\1/p'); \
	if [ "$$v" != 14 ]; then \
		echo "format-check: needs clang-format 14 (found: $${v:-none}); not checked"; \
	else \
		$(CLANG_FORMAT) --dry-run -Werror $(FORMAT_SRC) && \
		echo "format-check: $(words $(FORMAT_SRC)) files in kernel style (.clang-format)"; \
	fi

run: deps
	@$(MAKE) --no-print-directory all
	build/softmm compare --out build/compare.svg

clean:
	rm -rf build

# ---- ThreadSanitizer ----
# build/tsan/: SMM_DEBUG + ThreadSanitizer (docs/THREADSANITIZER.md).
# TSAN_CC picks the compiler (gcc 12 and clang 14 both work; after
# switching, rm -rf build/tsan). `make tsan-test` builds and runs every TSan
# step; `make test` runs them from scripts/test-all.sh, which builds
# check-tsan itself. Runs go through scripts/tsan-run.sh (TSAN_OPTIONS).
TSAN_CC    ?= $(CC)
# gcc 12 refuses atomic_thread_fence under TSan (-Wtsan: TSan does not model
# fences); the one in access.h is the no-membarrier fallback, not taken when
# membarrier works. clang has no such warning (and no -Wno-tsan).
TSAN_WNO    = $(eval TSAN_WNO := $(shell $(TSAN_CC) -Werror -Wno-tsan -fsanitize=thread -E -x c /dev/null >/dev/null 2>&1 && echo -Wno-tsan))$(TSAN_WNO)
TSANFLAGS   = $(BASE) -O1 -DSMM_DEBUG -fno-omit-frame-pointer -fsanitize=thread $(TSAN_WNO)
TSAN_OBJ   := $(patsubst src/%.c,build/tsan/obj/%.o,$(SRC))

.PHONY: check-tsan tsan-test
build/tsan/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(TSAN_CC) $(TSANFLAGS) $(DEPFLAGS) $(CFLAGS) -c $< -o $@
build/tsan/libsoftmm.a: $(TSAN_OBJ)
	@rm -f $@; ar rcs $@ $^
build/tsan/softmm: $(TOOLSRC) $(TOOLHDR) build/tsan/libsoftmm.a
	$(TSAN_CC) $(TSANFLAGS) $(CFLAGS) -Itools $(TOOLSRC) build/tsan/libsoftmm.a -o $@ $(DYNLIBS)
build/tsan/tests/%: tests/%.c tests/*.h build/tsan/libsoftmm.a
	@mkdir -p $(dir $@)
	$(TSAN_CC) $(TSANFLAGS) $(CFLAGS) -Itests $< build/tsan/libsoftmm.a -o $@ $(DYNLIBS)

check-tsan: $(addprefix build/tsan/tests/,$(TESTS)) build/tsan/softmm
	@true
tsan-test: deps
	@$(MAKE) --no-print-directory check-tsan
	@set -e; for t in $(addprefix build/tsan/tests/,$(TESTS)); do \
		echo "tsan: $$t"; scripts/tsan-run.sh $$t >/dev/null; done; \
	echo "tsan: torture"; \
	scripts/tsan-run.sh build/tsan/softmm torture --threads 4 --seconds 15 --seed 5

# ---- libFuzzer (tests/fuzz/README.md) ----
# build/fuzz/: the library built by clang with SMM_DEBUG, ASan and UBSan and
# libFuzzer's coverage, and build/fuzz/fuzz_script, the harness around the
# script parser and the softmm backend (tools/script.c). `make fuzz-build`
# builds it; `make fuzz` also runs it for FUZZ_SECONDS on the seed corpus
# (scripts/fuzz-run.sh; new inputs and findings stay under build/fuzz/) and
# fails on any crash, leak or sanitizer report.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZFLAGS    := $(BASE) -O1 -DSMM_DEBUG -fno-omit-frame-pointer \
                -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_OBJ     := $(patsubst src/%.c,build/fuzz/obj/%.o,$(SRC))
FUZZ_SRC     := tests/fuzz/fuzz_script.c tools/script.c tools/cli.c

.PHONY: fuzz fuzz-build
build/fuzz/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZFLAGS) -fsanitize=fuzzer-no-link $(DEPFLAGS) $(CFLAGS) -c $< -o $@
build/fuzz/libsoftmm.a: $(FUZZ_OBJ)
	@rm -f $@; ar rcs $@ $^
build/fuzz/fuzz_script: $(FUZZ_SRC) $(TOOLHDR) build/fuzz/libsoftmm.a
	$(FUZZ_CC) $(FUZZFLAGS) -fsanitize=fuzzer $(CFLAGS) -Itools $(FUZZ_SRC) \
		build/fuzz/libsoftmm.a -o $@ -l:liburcu-memb.a -l:liburcu-common.a -lpthread
fuzz-build: build/fuzz/fuzz_script
fuzz: fuzz-build
	scripts/fuzz-run.sh build/fuzz/fuzz_script $(FUZZ_SECONDS)

# Header dependencies of the library objects (written by -MMD). Tools and
# tests are rebuilt when the library archive they link is.
-include $(wildcard build/obj/*.d build/asan/obj/*.d build/bug*/obj/*.d build/count/obj/*.d build/tsan/obj/*.d build/fuzz/obj/*.d)
