// Command gen is the Go 1.23 reference for crates/goflate.
//
//	gen vectors FILE          write the golden vectors (see vectors.txt's header)
//	gen compress LEVEL SPLITS  gzip stdin to stdout, one Write per line of file SPLITS
//	gen bench SPEC...          time gzip.DefaultCompression on each input spec
//	gen probe SPEC LEVEL       find "first:K" splits whose output differs from one Write
//	gen input SPEC             write the input named by SPEC to stdout
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

func compress(data []byte, level int, writes []int) []byte {
	return compressFlush(data, level, writes, false)
}

// compressFlush is compress with a Flush after every Write when flush is set.
func compressFlush(data []byte, level int, writes []int, flush bool) []byte {
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, level)
	if err != nil {
		panic(err)
	}
	off := 0
	for _, n := range writes {
		if _, err := w.Write(data[off : off+n]); err != nil {
			panic(err)
		}
		if flush {
			if err := w.Flush(); err != nil {
				panic(err)
			}
		}
		off += n
	}
	if off != len(data) {
		panic(fmt.Sprintf("writes cover %d of %d bytes", off, len(data)))
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

var allLevels = []int{-2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
var mainLevels = []int{-1, 1, 9}

type vector struct {
	input, split string
	levels       []int
}

func vectors() []vector {
	var v []vector
	add := func(input, split string, levels []int) { v = append(v, vector{input, split, levels}) }
	for _, in := range []string{"bytes:", "bytes:61", "bytes:" + hex.EncodeToString([]byte("hello, world\n")),
		"text:100:1", "random:100:2", "zeros:1024:0", "text:5000:3", "periodic:300000:3:7", "zeros:100000:0"} {
		add(in, "one", allLevels)
	}
	// Sizes around block, window and slide boundaries.
	for _, n := range []int{16, 17, 127, 128, 65273, 65274, 65275, 65535, 65536, 65537, 65536 + 262,
		98304 - 262, 98304, 98304 + 262, 131072, 131073, 196607} {
		for _, kind := range []string{"text", "random", "mixed"} {
			levels := []int{-1, 1, 9}
			if n == 65536 || n == 65537 || n == 16 || n == 17 {
				levels = allLevels
			}
			add(fmt.Sprintf("%s:%d:%d", kind, n, n), "one", levels)
		}
	}
	for _, in := range []string{"mixed:1048576:4", "text:1048576:5"} {
		add(in, "one", allLevels)
	}
	add("random:1048576:6", "one", mainLevels)
	add("zeros:2097152:0", "one", mainLevels)
	add("periodic:2097152:9:1000", "one", mainLevels)
	add("mixed:4194304:7", "one", []int{-1, 1})
	add("tar:8388608:8", "one", []int{-1, 1})
	add("tar:8388608:8", "tar", []int{-1, 1})
	add("tar:2097152:9", "tar", allLevels)
	add("mixed:1048576:4", "rand:11", []int{-1, 1, 4, 9})
	add("mixed:1048576:4", "fixed:512", []int{-1, 9})
	add("text:300000:12", "fixed:1000", []int{-1, 2, 9})
	add("text:300000:12", "fixed:1", []int{-1})
	add("mixed:300000:13", "flush:50000", allLevels)
	add("bytes:", "flush:1", []int{-1, 1})
	return v
}

func writeVectors(path string) error {
	var b strings.Builder
	b.WriteString("# Golden outputs of Go " + runtime.Version() + " compress/gzip (NewWriterLevel, Writes, Close),\n")
	b.WriteString("# made by testdata/goflate/gen (go run . vectors). Columns: input spec, write split,\n")
	b.WriteString("# level, gzip length, sha256 of the gzip stream, and the stream in hex when <= 96 bytes.\n")
	b.WriteString("# Specs are explained in gen/corpus.go; crates/goflate/tests/common/corpus.rs mirrors it.\n")
	for _, v := range vectors() {
		data, tarWrites, err := genInput(v.input)
		if err != nil {
			return err
		}
		writes, err := genSplits(v.split, len(data), tarWrites)
		if err != nil {
			return err
		}
		for _, level := range v.levels {
			out := compressFlush(data, level, writes, strings.HasPrefix(v.split, "flush:"))
			sum := sha256.Sum256(out)
			fmt.Fprintf(&b, "%s %s %d %d %x", v.input, v.split, level, len(out), sum)
			if len(out) <= 96 {
				fmt.Fprintf(&b, " %x", out)
			}
			b.WriteString("\n")
		}
	}
	for _, p := range probes {
		data, _, err := genInput(p.input)
		if err != nil {
			return err
		}
		writes, err := genSplits(p.split, len(data), nil)
		if err != nil {
			return err
		}
		one := compress(data, p.level, []int{len(data)})
		split := compress(data, p.level, writes)
		if bytes.Equal(one, split) {
			return fmt.Errorf("probe %v no longer differs from a single Write", p)
		}
		fmt.Fprintf(&b, "%s one %d %d %x\n", p.input, p.level, len(one), sha256.Sum256(one))
		fmt.Fprintf(&b, "%s %s %d %d %x\n", p.input, p.split, p.level, len(split), sha256.Sum256(split))
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// probes are inputs and write splits whose output differs from that of a single Write
// (see the crate docs of goflate): the window slides at a different point.
var probes = []struct {
	input, split string
	level        int
}{
	// A Write ends at window index 65535, so the parser stops at loop top 65274 and the
	// window slides before the match 32574 bytes back is looked for.
	{"copies:66536:1:32700-65274-16", "first:65535", -1},
	// The last Write starts at 65400; the parser stops at 65278 (after a 258-byte match)
	// and slides, which a single Write never does at the end of the input.
	{"copies:65536:2:40000-65020-258.32600-65300-16", "first:65400", -1},
	{"copies:65536:2:40000-65020-258.32600-65300-16", "first:65400", 9},
}

func probe(spec string, level int) error {
	data, _, err := genInput(spec)
	if err != nil {
		return err
	}
	one := compress(data, level, []int{len(data)})
	found := 0
	for k := 1; k < len(data) && found < 20; k++ {
		if k%32768 < 32000 && len(data)-k > 300 {
			continue
		}
		out := compress(data, level, []int{k, len(data) - k})
		if !bytes.Equal(one, out) {
			fmt.Printf("%s first:%d %d differs (%d vs %d bytes)\n", spec, k, level, len(out), len(one))
			found++
		}
	}
	return nil
}

func readSplits(path string) ([]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []int
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" {
			continue
		}
		n, err := strconv.Atoi(line)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, s.Err()
}

func bench(specs []string) error {
	for _, spec := range specs {
		data, _, err := genInput(spec)
		if err != nil {
			return err
		}
		best := time.Duration(1 << 62)
		var outLen int
		for i := 0; i < 3; i++ {
			start := time.Now()
			out := compress(data, gzip.DefaultCompression, []int{len(data)})
			if d := time.Since(start); d < best {
				best = d
			}
			outLen = len(out)
		}
		mbps := float64(len(data)) / best.Seconds() / 1e6
		fmt.Printf("go %s %s: %d -> %d bytes, best of 3 %.3fs, %.1f MB/s\n",
			runtime.Version(), spec, len(data), outLen, best.Seconds(), mbps)
	}
	return nil
}

func main() {
	err := run(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: gen vectors FILE | compress LEVEL SPLITS | bench SPEC... | probe SPEC LEVEL | input SPEC")
	}
	switch args[0] {
	case "vectors":
		if len(args) != 2 {
			return fmt.Errorf("usage: gen vectors FILE")
		}
		return writeVectors(args[1])
	case "compress":
		if len(args) != 3 {
			return fmt.Errorf("usage: gen compress LEVEL SPLITS")
		}
		level, err := strconv.Atoi(args[1])
		if err != nil {
			return err
		}
		writes, err := readSplits(args[2])
		if err != nil {
			return err
		}
		data, err := io.ReadAll(os.Stdin)
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(compress(data, level, writes))
		return err
	case "bench":
		return bench(args[1:])
	case "input":
		if len(args) != 2 {
			return fmt.Errorf("usage: gen input SPEC")
		}
		data, _, err := genInput(args[1])
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(data)
		return err
	case "probe":
		if len(args) != 3 {
			return fmt.Errorf("usage: gen probe SPEC LEVEL")
		}
		level, err := strconv.Atoi(args[2])
		if err != nil {
			return err
		}
		return probe(args[1], level)
	}
	return fmt.Errorf("unknown command %q", args[0])
}
