package main

import (
	"bufio"
	"debug/elf"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// releaseStartPages unmaps the binary's code and read-only data pages from
// the process (madvise MADV_DONTNEED on its read-only, file-backed
// mappings); the ones serving needs come back on first use, as minor faults
// from the page cache. Start-up runs every package's init and the
// settings, pool and routing set-up once, and the kernel maps the binary
// 64 KiB around each page touched: 12 MiB of the 16.5 MB binary was resident
// before the first request, of which serving uses a few MiB (see
// docs/performance.md, "Memory at 1,000 connections"). The pages stay in
// the page cache, shared and reclaimable; this is the process's resident
// set, not the machine's cache. Writable mappings (the data segment, with
// its initialised variables) are never touched: MADV_DONTNEED would reset
// them to the file's contents. Nor is a position-independent binary
// (-buildmode=pie): its relocated read-only data (RELRO) is private,
// written once at start-up and then made read-only, and dropping it would
// bring back the unrelocated bytes of the file.
func releaseStartPages() (released int, err error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, err
	}
	if pie, err := positionIndependent(exe); err != nil || pie {
		return 0, err
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	type span struct{ start, end uintptr }
	var spans []span
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 00400000-00a6a000 r-xp 00000000 fd:01 1234 /path/to/isis
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != exe || strings.Contains(fields[1], "w") || !strings.HasSuffix(fields[1], "p") {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		spans = append(spans, span{uintptr(start), uintptr(end)})
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	for _, s := range spans {
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, s.start, s.end-s.start, unix.MADV_DONTNEED); errno != 0 {
			return released, errno
		}
		released += int(s.end - s.start)
	}
	return released, nil
}

// positionIndependent reports whether the ELF file at path is a
// position-independent executable (ET_DYN) rather than one loaded at its
// link address (ET_EXEC, what go build makes by default on Linux/amd64).
func positionIndependent(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	return f.Type != elf.ET_EXEC, nil
}
