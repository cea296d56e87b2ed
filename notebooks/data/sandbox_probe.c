/* sandbox_probe.c: a WASI command that tries to reach outside its sandbox (notebook 8).
 *
 * It reports an environment variable, then performs each access named on its command line:
 *   r:PATH  read the first line of PATH        w:PATH  create PATH and write a line to it
 *   l:PATH  list the directory PATH
 * A WASI guest sees only the directories the host preopened and the variables the host passed; everything
 * else fails with an errno, which this program prints (wasi-libc numbers and texts).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void denied(const char *what, const char *path) {
    printf("%-5s %-26s DENIED  errno %d (%s)\n", what, path, errno, strerror(errno));
}

static void try_read(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return denied("read", path);
    char line[96] = "";
    if (!fgets(line, sizeof line, f)) line[0] = 0;
    line[strcspn(line, "\n")] = 0;
    fclose(f);
    printf("%-5s %-26s ok      \"%s\"\n", "read", path, line);
}

static void try_write(const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return denied("write", path);
    int ok = fputs("written from inside the sandbox\n", f) >= 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok) return denied("write", path);
    printf("%-5s %-26s ok\n", "write", path);
}

static void try_list(const char *path) {
    DIR *d = opendir(path);
    if (!d) return denied("list", path);
    int n = 0;
    while (readdir(d)) n++;
    closedir(d);
    printf("%-5s %-26s ok      %d entries\n", "list", path, n);
}

int main(int argc, char **argv) {
    const char *token = getenv("API_TOKEN");
    const char *region = getenv("EDGE_REGION");
    printf("env   API_TOKEN=%s EDGE_REGION=%s\n", token ? token : "(unset)", region ? region : "(unset)");
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "r:", 2) == 0) try_read(arg + 2);
        else if (strncmp(arg, "w:", 2) == 0) try_write(arg + 2);
        else if (strncmp(arg, "l:", 2) == 0) try_list(arg + 2);
    }
    return 0;
}
