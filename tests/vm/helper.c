/* The VM's helper, compiled with `gcc -static` by tests/vm/mod.rs: what
 * busybox 1.35 cannot do (its unshare has no cgroup namespace) and a
 * workload with a known size.
 *
 *   helper hog MIB [spin]   touch MIB MiB of anonymous memory, then spin
 *                           on the CPU (spin) or sleep; "ready" on stdout
 *                           once the memory is touched
 *   helper container CGROUP [--host-cgroup DIR] -- CMD ARGS...
 *                           join CGROUP (a cgroup v2 directory), then a
 *                           new cgroup and mount namespace as containerd
 *                           makes them: cgroup2 mounted again at
 *                           /sys/fs/cgroup (its root is now CGROUP), /proc
 *                           mounted again (the current PID namespace);
 *                           with --host-cgroup the node's tree stays
 *                           reachable at DIR (a hostPath); exec CMD
 *   helper fork             fork once (a cgroup at pids.max refuses it:
 *                           "fork refused" on stdout), then sleep
 *   helper as UID CMD ARGS...
 *                           drop to UID (and the same gid, no groups, so
 *                           no capability either) and exec CMD
 *   pause                   (installed under that name) sleep forever,
 *                           the pod's infrastructure container
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <grp.h>
#include <sys/mount.h>
#include <unistd.h>

static void die(const char *what) {
    fprintf(stderr, "helper: %s: %s\n", what, strerror(errno));
    exit(111);
}

static int hog(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: helper hog MIB [spin]\n");
        return 64;
    }
    size_t bytes = (size_t)atol(argv[2]) << 20;
    char *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        die("mmap");
    for (size_t i = 0; i < bytes; i += 4096)
        mem[i] = 1;
    printf("ready\n");
    fflush(stdout);
    if (argc > 3 && strcmp(argv[3], "spin") == 0) {
        volatile unsigned long n = 0;
        for (;;)
            n++;
    }
    for (;;)
        pause();
}

static int container(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: helper container CGROUP [--host-cgroup DIR] -- CMD...\n");
        return 64;
    }
    const char *cgroup = argv[2];
    const char *host = NULL;
    int i = 3;
    if (strcmp(argv[i], "--host-cgroup") == 0) {
        host = argv[i + 1];
        i += 2;
    }
    if (i >= argc || strcmp(argv[i], "--") != 0 || i + 1 >= argc) {
        fprintf(stderr, "helper container: expected -- CMD\n");
        return 64;
    }
    char procs[4096];
    snprintf(procs, sizeof procs, "%s/cgroup.procs", cgroup);
    int fd = open(procs, O_WRONLY);
    if (fd < 0 || write(fd, "0", 1) != 1)
        die(procs);
    close(fd);
    if (unshare(CLONE_NEWCGROUP | CLONE_NEWNS) != 0)
        die("unshare");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        die("make / private");
    if (host && mount("/sys/fs/cgroup", host, NULL, MS_BIND, NULL) != 0)
        die("bind the host's cgroup tree");
    /* The same cgroup2 superblock cannot be mounted on its own root
     * (EBUSY): containerd mounts it in a fresh rootfs, here the old mount
     * goes first. */
    if (umount2("/sys/fs/cgroup", MNT_DETACH) != 0)
        die("umount /sys/fs/cgroup");
    if (mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, NULL) != 0)
        die("mount cgroup2");
    if (mount("proc", "/proc", "proc", 0, NULL) != 0)
        die("mount proc");
    execvp(argv[i + 1], argv + i + 1);
    die(argv[i + 1]);
    return 111;
}

static int as(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: helper as UID CMD...\n");
        return 64;
    }
    unsigned id = (unsigned)atoi(argv[2]);
    if (setgroups(0, NULL) != 0 || setgid(id) != 0 || setuid(id) != 0)
        die("setuid");
    execvp(argv[3], argv + 3);
    die(argv[3]);
    return 111;
}

static void forks(void) {
    pid_t pid = fork();
    if (pid < 0)
        printf("fork refused: %s\n", strerror(errno));
    else if (pid > 0)
        printf("fork done\n");
    fflush(stdout);
    for (;;)
        pause();
}

int main(int argc, char **argv) {
    const char *name = strrchr(argv[0], '/');
    name = name ? name + 1 : argv[0];
    if (strcmp(name, "pause") == 0) {
        for (;;)
            pause();
    }
    if (argc > 1 && strcmp(argv[1], "hog") == 0)
        return hog(argc, argv);
    if (argc > 1 && strcmp(argv[1], "fork") == 0) {
        forks();
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "as") == 0)
        return as(argc, argv);
    if (argc > 1 && strcmp(argv[1], "container") == 0)
        return container(argc, argv);
    fprintf(stderr, "usage: helper hog|container ...\n");
    return 64;
}
