/*
 * scmi-raw: the guest side of `memlat vm run`. Sends SCMI messages through the Linux
 * SCMI raw-mode debugfs file (drivers/firmware/arm_scmi/raw_mode.c) and prints each
 * reply as hex on the console, for the host to compare with the in-process probe.
 *
 *   scmi-raw DIR FILE...   each FILE holds one message (header + payload); one write()
 *                          of the whole message, one read() of the whole reply (on a
 *                          fresh open, see exchange()); prints "MEMLAT-REPLY <name> <ns> <hex>"
 *   scmi-raw -t N FILE     N round trips of FILE; prints "MEMLAT-RTT <N> <ns total>"
 *
 * DIR is the raw directory's message file, e.g. /sys/kernel/debug/scmi/0/raw/message.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static ssize_t load(const char *path, unsigned char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, cap);
	close(fd);
	return n;
}

/*
 * One exchange on a fresh open of the raw file; returns the reply length or -errno.
 * A fresh open per message, because the file is nonseekable and raw_mode.c (6.12)
 * writes a message at the file position the previous read left (simple_write_to_buffer
 * at *ppos) but sends the buffer from offset 0: on a reused fd the second message would
 * go out with the first one's bytes.
 */
static ssize_t exchange(const char *path, const unsigned char *msg, size_t len,
			unsigned char *rx, size_t cap)
{
	int fd = open(path, O_RDWR);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, msg, len);
	if (n != (ssize_t)len) {
		n = n < 0 ? -errno : -EIO;
		close(fd);
		return n;
	}
	/* one read dequeues one whole reply (blocking until it or the kernel's timeout) */
	n = read(fd, rx, cap);
	if (n < 0)
		n = -errno;
	close(fd);
	return n;
}

int main(int argc, char **argv)
{
	unsigned char msg[512], rx[512];
	const char *file;
	int i, rounds = 0, first = 2;

	if (argc >= 5 && !strcmp(argv[2], "-t")) {
		rounds = atoi(argv[3]);
		first = 4;
	}
	if (argc <= first) {
		fprintf(stderr, "usage: scmi-raw RAWFILE [-t N] FILE...\n");
		return 2;
	}
	for (i = first; i < argc; i++) {
		ssize_t len, n = 0, k;
		long long t0, t1;
		int r, count = rounds ? rounds : 1;

		file = argv[i];
		len = load(file, msg, sizeof(msg));
		if (len < 4) {
			printf("MEMLAT-ERROR read %s\n", file);
			continue;
		}
		t0 = now_ns();
		for (r = 0; r < count; r++) {
			n = exchange(argv[1], msg, len, rx, sizeof(rx));
			if (n < 0)
				break;
		}
		t1 = now_ns();
		if (n < 0) {
			printf("MEMLAT-ERROR %s: %s\n", file, strerror((int)-n));
			continue;
		}
		if (rounds) {
			printf("MEMLAT-RTT %d %lld\n", rounds, t1 - t0);
			continue;
		}
		printf("MEMLAT-REPLY %s %lld ", strrchr(file, '/') ? strrchr(file, '/') + 1 : file,
		       t1 - t0);
		for (k = 0; k < n; k++)
			printf("%02x", rx[k]);
		printf("\n");
		fflush(stdout);
	}
	return 0;
}
