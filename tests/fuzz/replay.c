/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Feeds every file of $FUZZ_CORPUS/<target>/ (or the files named) to LLVMFuzzerTestOneInput
 * once, so 'make check' exercises each fuzz target with any compiler. Prints TAP. */
#include "config.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern const char fuzz_target_name[];

static int
run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long len;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0) {
        return -1;
    }
    rewind(f);
    buf = malloc((size_t)len + 1);
    if (buf == NULL || fread(buf, 1, (size_t)len, f) != (size_t)len) {
        fclose(f);
        free(buf);
        return -1;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, (size_t)len);
    free(buf);
    return 0;
}

int
main(int argc, char **argv)
{
    const char *base = getenv("FUZZ_CORPUS");
    char dirpath[4096], path[8192];
    struct dirent *de;
    DIR *d;
    int n = 0, i;

    if (argc > 1) {
        for (i = 1; i < argc; i++) {
            printf("%s %d - %s\n", run_file(argv[i]) == 0 ? "ok" : "not ok", ++n, argv[i]);
        }
        printf("1..%d\n", n);
        return 0;
    }
    snprintf(dirpath, sizeof(dirpath), "%s/%s", base ? base : "fuzz/corpus", fuzz_target_name);
    if ((d = opendir(dirpath)) == NULL) {
        printf("not ok 1 - corpus %s missing\n1..1\n", dirpath);
        return 1;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dirpath, de->d_name);
        printf("%s %d - %s/%s\n", run_file(path) == 0 ? "ok" : "not ok", ++n, fuzz_target_name,
               de->d_name);
    }
    closedir(d);
    printf("1..%d\n", n);
    return n > 0 ? 0 : 1;
}
