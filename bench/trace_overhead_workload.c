/*
 * trace_overhead_workload.c - the page-fault-heavy load of
 * bench/trace_overhead.sh: map SIZE_MIB of anonymous memory, touch every
 * 4 KiB page (one fault and one order-0 movable allocation each), unmap it
 * (frees), LOOPS times. THP is disabled on the mapping so every fault is a
 * base page, the worst case for per-allocation tracing. Prints the loop's
 * own CLOCK_MONOTONIC time and its CPU time (user + system, getrusage) so
 * tracer start-up and shutdown are not counted. The BPF programs run in the
 * faulting task's context, so their cost is in the CPU time, which unlike
 * the wall time does not include waiting for a CPU on a busy machine.
 *
 * usage: trace_overhead_workload SIZE_MIB LOOPS
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	size_t size, off;
	long loops, i;
	double t0, c0;

	if (argc != 3) {
		fprintf(stderr, "usage: %s SIZE_MIB LOOPS\n", argv[0]);
		return 2;
	}
	size = (size_t)atol(argv[1]) << 20;
	loops = atol(argv[2]);
	c0 = cpu_s();
	t0 = now_s();
	for (i = 0; i < loops; i++) {
		char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED) {
			perror("mmap");
			return 1;
		}
		madvise(p, size, MADV_NOHUGEPAGE);
		for (off = 0; off < size; off += 4096)
			p[off] = 1;
		munmap(p, size);
	}
	printf("workload_seconds=%.6f\n", now_s() - t0);
	printf("workload_cpu_seconds=%.6f\n", cpu_s() - c0);
	return 0;
}
