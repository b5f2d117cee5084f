/*
 * db185tool: load and look up DB 1.85 hash files with the real DB 1.85
 * library (Debian's libdb1-compat, /lib/libdb1.so.2), for popgate's
 * accessdb interop tests. Keys and values travel as hex, one pair a line.
 *
 *   db185tool load FILE < "hexkey hexvalue" lines   (creates FILE, little-endian)
 *   db185tool get FILE  < "hexkey" lines           (prints "hexkey hexvalue" for each found key)
 *
 * Build: cc -o db185tool db185tool.c /lib/libdb1.so.2
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { void *data; size_t size; } DBT;
typedef struct __db {
	int type;
	int (*close)(struct __db *);
	int (*del)(const struct __db *, const DBT *, unsigned int);
	int (*get)(const struct __db *, const DBT *, DBT *, unsigned int);
	int (*put)(const struct __db *, DBT *, const DBT *, unsigned int);
	int (*seq)(const struct __db *, DBT *, DBT *, unsigned int);
	int (*sync)(const struct __db *, unsigned int);
	void *internal;
	int (*fd)(const struct __db *);
} DB;
typedef struct {
	unsigned int bsize, ffactor, nelem, cachesize;
	unsigned int (*hash)(const void *, size_t);
	int lorder;
} HASHINFO;
extern DB *dbopen(const char *, int, int, int, const void *);

static unsigned char *unhex(const char *s, size_t n, size_t *outlen) {
	unsigned char *out = malloc(n / 2 + 1);
	for (size_t i = 0; i + 1 < n + 1 && i < n; i += 2) {
		unsigned int b;
		sscanf(s + i, "%2x", &b);
		out[i / 2] = (unsigned char)b;
	}
	*outlen = n / 2;
	return out;
}

static void puthex(const void *p, size_t n) {
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		printf("%02x", b[i]);
}

int main(int argc, char **argv) {
	static char line[1 << 22];
	if (argc != 3) {
		fprintf(stderr, "usage: db185tool load|get FILE\n");
		return 2;
	}
	int load = strcmp(argv[1], "load") == 0;
	HASHINFO info = {4096, 0, 0, 0, NULL, 1234};
	DB *db = load ? dbopen(argv[2], O_CREAT | O_RDWR | O_TRUNC, 0644, 1, &info)
		      : dbopen(argv[2], O_RDONLY, 0, 1, NULL);
	if (db == NULL) {
		perror("dbopen");
		return 2;
	}
	while (fgets(line, sizeof line, stdin)) {
		size_t n = strcspn(line, " \n");
		size_t klen, vlen;
		unsigned char *k = unhex(line, n, &klen);
		DBT key = {k, klen}, val;
		if (load) {
			char *v = line + n + 1;
			unsigned char *vb = unhex(v, strcspn(v, "\n"), &vlen);
			val.data = vb;
			val.size = vlen;
			if (db->put(db, &key, &val, 0) != 0) {
				perror("put");
				return 2;
			}
			free(vb);
		} else {
			int r = db->get(db, &key, &val, 0);
			if (r < 0) {
				perror("get");
				return 2;
			}
			if (r == 0) {
				puthex(k, klen);
				putchar(' ');
				puthex(val.data, val.size);
				putchar('\n');
			}
		}
		free(k);
	}
	if (db->close(db) != 0) {
		perror("close");
		return 2;
	}
	return 0;
}
