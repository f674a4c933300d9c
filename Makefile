# gc: build everything with `make`, run the unit tests with `make test`.
#
#   make              library, ./gc_train, ./gc_bench, ./gc_forecast, ./gc_tests (CUDA backend when nvcc is found),
#                     on all of the machine's cores unless -j is given
#   make CUDA=0       CPU-only build
#   make test         build and run ./gc_tests, then the cuda tests on cudasim, then a short fuzz
#                     run (FUZZ_TEST_RUNS executions per parser; non-zero exit on any failure)
#   make sanitize     build the tests with AddressSanitizer + UBSan into build-san/ and run them
#   make cudasim      the cuda backend built against cudasim (tests/cudasim: its kernels run on
#                     the CPU) into build-sim/; only `make test` needs it, so plain `make` skips it
#   make fuzz         libFuzzer targets of the five parsers (tests/fuzz) built with clang into
#                     build-fuzz/, each run for FUZZ_RUNS executions (non-zero exit on any crash)
#   make clean
#
# Debian packages needed beyond a fresh machine of this kind: libstb-dev (PNG
# output). Run as root, the Makefile installs it; otherwise it names the command.

# A bare `make` uses every core; an explicit -j (or -j1) wins.
ifeq ($(filter -j%,$(MAKEFLAGS)),)
  MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)
endif

NVCC_PATH := $(shell command -v nvcc 2>/dev/null)
ifeq ($(NVCC_PATH),)
  CUDA ?= 0
else
  CUDA ?= 1
endif

BUILD ?= build
CXX ?= g++
OPT ?= -O3 -march=native
# -fno-tree-slp-vectorize: GCC 12.2 with -march=native on AVX-512 machines (seen on Rocket
# Lake) turns constant initializers whose upper half is zero, such as
# std::vector<double>{1, 1, 0, 0}, into a broadcast of the first element (wrong code; the
# straight-line (SLP) vectorizer makes the constant). tests/runtime/test_compiler.cpp checks.
WORKAROUNDS := -fno-tree-slp-vectorize
CXXFLAGS := -std=c++17 $(OPT) $(WORKAROUNDS) -fno-math-errno -g1 -Wall -Wextra -fopenmp -I. -MMD -MP
LDFLAGS := -fopenmp
LDLIBS := -lpthread

ifeq ($(SANITIZE),1)
  CXXFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
endif

ifeq ($(CUDA),1)
  CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC_PATH))
  NVCC ?= $(NVCC_PATH)
  CXXFLAGS += -DGC_CUDA -I$(CUDA_HOME)/include
  NVCCFLAGS := -std=c++17 -O3 -DGC_CUDA -I. -MMD -MP \
    -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
    -gencode arch=compute_90,code=compute_90 -Xcompiler -fopenmp
  LDLIBS += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublasLt -lcublas -lcudart
  CU_SRCS := $(wildcard kernels/cuda/*.cu)
else
  CU_SRCS :=
endif

# ---- MPI and NCCL (optional, like CUDA) ---------------------------------------------
# Open MPI (Debian's openmpi-bin, libopenmpi-dev) launches ranks and moves cpu tensors;
# NCCL (in the CUDA toolkit) moves cuda tensors. Without them gc is a complete
# single-process build. Run as root, make installs Open MPI when it is missing (once,
# before anything is built); otherwise it says how. MPI=0 builds without it.
MPI_HEADER := /usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h
ifneq ($(MPI),0)
  ifeq ($(wildcard $(MPI_HEADER)),)
    ifneq ($(filter-out clean,$(or $(MAKECMDGOALS),all)),)
      ifeq ($(shell id -u),0)
        $(info gc: installing Debian packages openmpi-bin libopenmpi-dev (optional: multi-process runs))
        MPI_INSTALL := $(shell (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openmpi-bin libopenmpi-dev >/dev/null 2>&1 \
          || (apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openmpi-bin libopenmpi-dev >/dev/null 2>&1)) && echo ok)
        ifneq ($(MPI_INSTALL),ok)
          $(info gc: could not install Open MPI; building without MPI (apt-get install -y openmpi-bin libopenmpi-dev))
        endif
      else
        $(info gc: Open MPI not found; building without MPI (sudo apt-get install -y openmpi-bin libopenmpi-dev adds it))
      endif
    endif
  endif
endif
ifeq ($(wildcard $(MPI_HEADER)),)
  MPI ?= 0
else
  MPI ?= 1
endif
ifeq ($(CUDA),1)
  NCCL ?= $(if $(wildcard $(CUDA_HOME)/include/nccl.h),1,0)
else
  NCCL := 0
endif
# Only the communicator's sources see the engines' headers; they rebuild when the
# choice changes (the stamp), and every program links the engines' libraries.
COMM_OBJS := $(BUILD)/runtime/communicator.o $(BUILD)/runtime/communicator_mpi.o $(BUILD)/runtime/communicator_nccl.o
COMM_STAMP := $(BUILD)/comm-mpi$(MPI)-nccl$(NCCL).stamp
ifeq ($(MPI),1)
  COMM_CXXFLAGS += -DGC_MPI -DOMPI_SKIP_MPICXX $(shell mpicxx --showme:compile 2>/dev/null)
  LDLIBS += $(filter-out -lmpi_cxx,$(shell mpicxx --showme:link 2>/dev/null))
endif
ifeq ($(NCCL),1)
  COMM_CXXFLAGS += -DGC_NCCL
  LDLIBS += -lnccl
endif
$(COMM_OBJS): CXXFLAGS += $(COMM_CXXFLAGS)
$(COMM_OBJS): $(COMM_STAMP)
$(COMM_STAMP):
	@mkdir -p $(dir $@)
	@rm -f $(BUILD)/comm-*.stamp
	@touch $@

# The library: one folder a layer, then tools/' rooms (DESIGN.md "Layout").
LIB_DIRS := runtime kernels kernels/cpu autograd model tools/io tools/plot tools/data tools/memory tools/train tools/forecast tools/study
LIB_SRCS := $(wildcard $(LIB_DIRS:%=%/*.cpp))
# Tests mirror the layers; tests/cudasim also holds the simulator itself (sim.cpp).
TEST_SRCS := $(wildcard tests/runtime/*.cpp tests/kernels/*.cpp tests/autograd/*.cpp tests/model/*.cpp \
  tests/tools/*.cpp tests/cudasim/test_*.cpp)
LIB_OBJS := $(LIB_SRCS:%.cpp=$(BUILD)/%.o) $(CU_SRCS:%.cu=$(BUILD)/%.cu.o)
TEST_OBJS := $(TEST_SRCS:%.cpp=$(BUILD)/%.o)
LIB := $(BUILD)/libgc.a

STB_HEADER := /usr/include/stb/stb_image_write.h
GTEST_LIB := /usr/lib/x86_64-linux-gnu/libgtest.a

.PHONY: all test sanitize clean deps cudasim fuzz fuzz-corpus
.DEFAULT_GOAL := all

ifeq ($(BUILD),build)
all: gc_train gc_bench gc_forecast gc_study gc_tests
else
all: $(BUILD)/gc_tests
endif

# ---- Debian packages --------------------------------------------------------
define need_package
	@if [ -f $(1) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "gc: installing Debian package $(2) (for $(1))"; \
	  (apt-get install -y -qq $(2) >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2))) \
	  || { echo "gc: could not install $(2); run: apt-get update && apt-get install -y $(2)"; exit 1; }; \
	else echo "gc: missing $(1); install it with: sudo apt-get install -y $(2)"; exit 1; fi
endef

$(STB_HEADER):
	$(call need_package,$(STB_HEADER),libstb-dev)
$(GTEST_LIB):
	$(call need_package,$(GTEST_LIB),libgtest-dev)
deps: $(STB_HEADER) $(GTEST_LIB)

# Python for tools/era5/ and its test only (never to build, train or forecast):
# Debian's xarray and netCDF4. Not root and missing: tests/era5/run.sh says so and skips.
PY_XARRAY := /usr/lib/python3/dist-packages/xarray/__init__.py
PY_NETCDF4 := /usr/lib/python3/dist-packages/netCDF4/__init__.py
$(PY_XARRAY):
	-$(call need_package,$(PY_XARRAY),python3-xarray)
$(PY_NETCDF4):
	-$(call need_package,$(PY_NETCDF4),python3-netcdf4)

# ---- compile ------------------------------------------------------------------
$(BUILD)/%.o: %.cpp | $(STB_HEADER)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(BUILD)/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

# ---- programs -------------------------------------------------------------------
gc_train: $(BUILD)/tools/gc_train.o $(LIB)
	$(CXX) $(LDFLAGS) $^ -o $@ $(LDLIBS)

gc_bench: $(BUILD)/tools/gc_bench.o $(LIB)
	$(CXX) $(LDFLAGS) $^ -o $@ $(LDLIBS)

gc_forecast: $(BUILD)/tools/gc_forecast.o $(LIB)
	$(CXX) $(LDFLAGS) $^ -o $@ $(LDLIBS)

# gc_study links every object of tools/study/: each sub-command registers itself.
STUDY_OBJS := $(patsubst %.cpp,$(BUILD)/%.o,$(wildcard tools/study/*.cpp))
gc_study: $(BUILD)/tools/gc_study.o $(STUDY_OBJS) $(LIB)
	$(CXX) $(LDFLAGS) $^ -o $@ $(LDLIBS)

gc_tests $(BUILD)/gc_tests: $(TEST_OBJS) $(LIB) | $(GTEST_LIB)
	$(CXX) $(LDFLAGS) $(TEST_OBJS) $(LIB) -o $@ $(GTEST_LIB) /usr/lib/x86_64-linux-gnu/libgtest_main.a $(LDLIBS)

# ---- the multi-process tests (tests/mpi), run under mpirun when MPI is built ---------
MPI_TEST_SRCS := $(wildcard tests/mpi/*.cpp)
MPI_TEST_OBJS := $(MPI_TEST_SRCS:%.cpp=$(BUILD)/%.o)
# One OpenMP thread a rank: the ranks share the machine's cores.
MPIRUN := mpirun --oversubscribe --allow-run-as-root --mca btl self,vader -x OMP_NUM_THREADS=1
ifeq ($(MPI),1)
  MPI_TEST_BIN := $(BUILD)/gc_mpi_tests
  MPI_TEST_RUN := $(MPIRUN) -np 2 ./$(MPI_TEST_BIN) --gtest_brief=1 && $(MPIRUN) -np 4 ./$(MPI_TEST_BIN) --gtest_brief=1
else
  MPI_TEST_BIN :=
  MPI_TEST_RUN := @echo "gc: skipping the multi-process tests (tests/mpi): built without MPI"
endif
$(MPI_TEST_OBJS): CXXFLAGS += $(COMM_CXXFLAGS)
$(MPI_TEST_OBJS): $(COMM_STAMP)
$(BUILD)/gc_mpi_tests: $(MPI_TEST_OBJS) $(LIB) | $(GTEST_LIB)
	$(CXX) $(LDFLAGS) $(MPI_TEST_OBJS) $(LIB) -o $@ $(GTEST_LIB) $(LDLIBS)

test: gc_tests gc_train gc_bench gc_forecast gc_study cudasim $(MPI_TEST_BIN) | $(PY_XARRAY) $(PY_NETCDF4)
	./gc_tests
	tests/era5/run.sh
	$(MPI_TEST_RUN)
	./$(SIM)/gc_tests --gtest_brief=1 --gtest_filter='$(SIM_TESTS)'
	tests/cudasim/train_check.sh
	$(MAKE) fuzz FUZZ_RUNS=$(FUZZ_TEST_RUNS)

sanitize:
	$(MAKE) BUILD=build-san SANITIZE=1 CUDA=0 MPI=0 OPT="-O1" build-san/gc_tests
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ./build-san/gc_tests --gtest_filter='-*Slow*:*/Slow*'

clean:
	rm -rf build build-san $(SIM) $(FUZZ_BUILD) gc_train gc_bench gc_forecast gc_study gc_tests

# ---- fuzz: libFuzzer targets of the parsers ------------------------------------------
# One target per parser (tests/fuzz/fuzz_<name>.cpp), built with clang's libFuzzer,
# AddressSanitizer and UBSan. The library sources the parsers can reach go into one
# archive; each target's link takes only the objects it needs from it. Each target
# runs for FUZZ_RUNS executions from its seed corpus (tests/fuzz/corpus/<name>/, kept
# small and never written by a run) with a fixed -seed, so a run is reproducible
# (tests/fuzz/run.sh). `make fuzz FUZZ_RUNS=1000000` is the full run. A corpus holds
# the named seeds (by hand, or by gc's writers: `make fuzz-corpus`) and, under their
# SHA-1 names, the inputs that a full run added, minimized with libFuzzer's -merge=1.
FUZZ_BUILD := build-fuzz
FUZZ_CXX ?= clang++-14
FUZZ_RUNS ?= 200000
FUZZ_TEST_RUNS ?= 10000
FUZZ_SEED ?= 1
FUZZ_TARGETS := json options safetensors swe_dataset npz weather_dataset
# Longest input per target: a few times the largest seed.
FUZZ_MAX_LEN_json := 4096
FUZZ_MAX_LEN_options := 1024
FUZZ_MAX_LEN_safetensors := 4096
FUZZ_MAX_LEN_swe_dataset := 4096
FUZZ_MAX_LEN_npz := 4096
FUZZ_MAX_LEN_weather_dataset := 4096
# The flag names and value words of gc_train, so that mutations make whole flags.
FUZZ_FLAGS_options := -dict=tests/fuzz/options.dict
FUZZ_SANITIZERS := address,undefined
FUZZ_CXXFLAGS := -std=c++17 -O1 -g -fno-omit-frame-pointer -fno-sanitize-recover=undefined -fopenmp -I. -MMD -MP
FUZZ_LIB_SRCS := $(wildcard runtime/*.cpp tools/io/*.cpp) tools/data/swe_dataset.cpp tools/data/swe_solver.cpp \
  tools/data/swe_transform.cpp tools/data/weather_dataset.cpp tools/train/options.cpp \
  model/processor.cpp
FUZZ_LIB_OBJS := $(FUZZ_LIB_SRCS:%.cpp=$(FUZZ_BUILD)/%.o)
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)
.SECONDARY: $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/tests/fuzz/fuzz_%.o) $(FUZZ_BUILD)/tests/fuzz/make_corpus.o
# libomp for clang's -fopenmp (the library's OpenMP pragmas; g++ uses libgomp).
OMP_HEADER := $(shell $(FUZZ_CXX) -print-resource-dir 2>/dev/null)/include/omp.h

$(OMP_HEADER):
	$(call need_package,$(OMP_HEADER),libomp-14-dev)

fuzz: $(FUZZ_BINS)
	$(foreach t,$(FUZZ_TARGETS),tests/fuzz/run.sh $(FUZZ_BUILD) $(t) $(FUZZ_RUNS) $(FUZZ_SEED) $(FUZZ_MAX_LEN_$(t)) \
	  $(FUZZ_FLAGS_$(t)) &&) true

# The binary seeds, rewritten with gc's own writers (see tests/fuzz/make_corpus.cpp).
fuzz-corpus: $(FUZZ_BUILD)/make_corpus
	mkdir -p tests/fuzz/corpus/safetensors tests/fuzz/corpus/swe_dataset
	./$(FUZZ_BUILD)/make_corpus tests/fuzz/corpus

# build-fuzz/ ignores itself, as a build folder should.
$(FUZZ_BUILD)/.gitignore:
	@mkdir -p $(dir $@)
	@echo '*' > $@

$(FUZZ_BUILD)/%.o: %.cpp | $(OMP_HEADER) $(FUZZ_BUILD)/.gitignore
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -fsanitize=fuzzer-no-link,$(FUZZ_SANITIZERS) -c $< -o $@

$(FUZZ_BUILD)/libgc_fuzz.a: $(FUZZ_LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/tests/fuzz/fuzz_%.o $(FUZZ_BUILD)/libgc_fuzz.a
	$(FUZZ_CXX) -fsanitize=fuzzer,$(FUZZ_SANITIZERS) -fopenmp $^ -o $@ -lpthread

$(FUZZ_BUILD)/make_corpus: $(FUZZ_BUILD)/tests/fuzz/make_corpus.o $(FUZZ_BUILD)/libgc_fuzz.a
	$(FUZZ_CXX) -fsanitize=$(FUZZ_SANITIZERS) -fopenmp $^ -o $@ -lpthread

-include $(FUZZ_LIB_OBJS:.o=.d) $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/tests/fuzz/fuzz_%.d) $(FUZZ_BUILD)/tests/fuzz/make_corpus.d

# ---- cudasim: the cuda backend on the CPU -------------------------------------------
# Every source is built again with GC_CUDA defined and tests/cudasim's headers in
# place of the CUDA toolkit's (no nvcc, no GPU needed); kernels/cuda/* are first
# rewritten by tests/cudasim/translate.pl (launch syntax only) into $(SIM)/kernels/cuda/,
# which comes first on the include path. The tests whose names contain "Cuda" then
# run every kernel, copy and cuBLAS call of the backend in the simulator, and
# tests/cudasim/train_check.sh trains small models with gc_train --device cuda.
SIM := build-sim
SIM_TESTS := *Cuda*
# GC_CUDA_MAX_BLOCKS: launches capped at 3 blocks, so that every kernel's loop over
# the items beyond one grid runs with small test inputs (results never depend on the
# cap; at real sizes on a GPU every launch takes that loop). GC_CUDA_SUMS_PER_LAUNCH:
# sum_squares_many takes 3 tensors a launch, so that a few tensors take several
# launches (each tensor is 1024 simulated blocks).
SIM_CXXFLAGS := -std=c++17 -O2 $(WORKAROUNDS) -g1 -fno-math-errno -Wall -Wextra -Wno-unknown-pragmas -fopenmp \
  -I$(SIM) -I. -Itests/cudasim -DGC_CUDA -DGC_CUDA_SIM -DGC_CUDA_MAX_BLOCKS=3 -DGC_CUDA_SUMS_PER_LAUNCH=3 -MMD -MP
# The simulated kernels contract a * b + c into fused multiply-adds where the
# compiler sees fit, as nvcc does by default (--fmad=true), so tests that claim
# bitwise equality with the cpu cannot depend on the absence of contraction.
SIM_KERNEL_FLAGS := -march=native -ffp-contract=fast
SIM_CU_SRCS := $(wildcard kernels/cuda/*.cu)
SIM_CU_HDRS := $(wildcard kernels/cuda/*.h)
SIM_TRANSLATED := $(SIM_CU_SRCS:%=$(SIM)/%) $(SIM_CU_HDRS:%=$(SIM)/%)
SIM_LIB_OBJS := $(LIB_SRCS:%.cpp=$(SIM)/%.o) $(SIM_CU_SRCS:%.cu=$(SIM)/%.cu.o) $(SIM)/tests/cudasim/sim.o \
  $(SIM)/tests/cudasim/sim_blas.o
SIM_TEST_OBJS := $(TEST_SRCS:%.cpp=$(SIM)/%.o)

cudasim: $(SIM)/gc_tests $(SIM)/gc_train

.SECONDARY: $(SIM_TRANSLATED)

$(SIM)/kernels/cuda/%: kernels/cuda/% tests/cudasim/translate.pl
	@mkdir -p $(dir $@)
	perl tests/cudasim/translate.pl $< $< > $@.tmp && mv $@.tmp $@

$(SIM)/%.cu.o: $(SIM)/%.cu | $(SIM_TRANSLATED)
	$(CXX) $(SIM_CXXFLAGS) $(SIM_KERNEL_FLAGS) -x c++ -c $< -o $@

$(SIM)/%.o: %.cpp | $(SIM_TRANSLATED) $(STB_HEADER)
	@mkdir -p $(dir $@)
	$(CXX) $(SIM_CXXFLAGS) -c $< -o $@

$(SIM)/libgc.a: $(SIM_LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(SIM)/gc_tests: $(SIM_TEST_OBJS) $(SIM)/libgc.a | $(GTEST_LIB)
	$(CXX) $(LDFLAGS) $(SIM_TEST_OBJS) $(SIM)/libgc.a -o $@ $(GTEST_LIB) /usr/lib/x86_64-linux-gnu/libgtest_main.a -lpthread

$(SIM)/gc_train: $(SIM)/tools/gc_train.o $(SIM)/libgc.a
	$(CXX) $(LDFLAGS) $^ -o $@ -lpthread

# tools/gpu_check.sh --sim runs gc_bench (device, large) on the simulator too.
$(SIM)/gc_bench: $(SIM)/tools/gc_bench.o $(SIM)/libgc.a
	$(CXX) $(LDFLAGS) $^ -o $@ -lpthread

-include $(SIM_LIB_OBJS:.o=.d) $(SIM_TEST_OBJS:.o=.d) $(SIM)/tools/gc_train.d $(SIM)/tools/gc_bench.d

-include $(MPI_TEST_OBJS:.o=.d)
# Every program's own object too, so that a changed header rebuilds it.
-include $(LIB_OBJS:.o=.d) $(TEST_OBJS:.o=.d) $(BUILD)/tools/gc_train.d $(BUILD)/tools/gc_bench.d $(BUILD)/tools/gc_forecast.d \
  $(BUILD)/tools/gc_study.d
