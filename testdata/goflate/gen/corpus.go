package main

// Deterministic test inputs. crates/goflate/tests/common/corpus.rs generates the same bytes;
// change both together.

import (
	"fmt"
	"strconv"
	"strings"
)

type rng struct{ s uint64 }

// next is splitmix64.
func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (r *rng) below(n uint64) uint64 { return r.next() % n }

var words = []string{
	"the", "layer", "image", "build", "kiln", "container", "digest", "sha256",
	"gzip", "deflate", "window", "hash", "chain", "token", "block", "huffman",
	"lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit",
	"usr/lib", "/etc/passwd", "0755", "root", "{\"key\":", "\"value\"},", "= 42;", "return",
}

func genRandom(r *rng, n int) []byte {
	out := make([]byte, 0, n+8)
	for len(out) < n {
		v := r.next()
		for i := 0; i < 8; i++ {
			out = append(out, byte(v>>(8*i)))
		}
	}
	return out[:n]
}

func genText(r *rng, n int) []byte {
	out := make([]byte, 0, n+32)
	for len(out) < n {
		out = append(out, words[r.below(uint64(len(words)))]...)
		if r.below(10) == 0 {
			out = append(out, '\n')
		} else {
			out = append(out, ' ')
		}
	}
	return out[:n]
}

func genPeriodic(r *rng, n, p int) []byte {
	pat := genRandom(r, p)
	out := make([]byte, n)
	for i := range out {
		out[i] = pat[i%p]
	}
	return out
}

func genMixed(r *rng, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		kind := r.below(5)
		span := uint64(4096)
		if r.below(4) == 0 {
			span = 65536
		}
		l := int(1 + r.below(span))
		switch kind {
		case 0:
			out = append(out, genText(r, l)...)
		case 1:
			out = append(out, genRandom(r, l)...)
		case 2:
			out = append(out, make([]byte, l)...)
		case 3:
			p := int(1 + r.below(64))
			out = append(out, genPeriodic(r, l, p)...)
		case 4:
			if len(out) == 0 {
				out = append(out, make([]byte, l)...)
			} else {
				start := int(r.below(uint64(len(out))))
				end := start + l
				if end > len(out) {
					end = len(out)
				}
				out = append(out, out[start:end]...)
			}
		}
	}
	return out[:n]
}

// genTar makes a tar-like stream (ustar-ish headers, file data, padding, two zero blocks)
// of at least n bytes, and the write sizes kiln uses for it: each header, file data in
// pieces of at most 32 KiB, the padding, and each zero block.
func genTar(r *rng, n int) ([]byte, []int) {
	var out []byte
	var writes []int
	for i := 0; len(out) < n; i++ {
		kind := r.below(4)
		var size int
		if r.below(8) == 0 {
			size = int(r.below(1 << 20))
		} else {
			size = int(r.below(16384))
		}
		h := make([]byte, 512)
		copy(h[0:], fmt.Sprintf("dir%d/file%06d.dat", i%7, i))
		copy(h[100:], "0000644\x00")
		copy(h[108:], "0000000\x00")
		copy(h[116:], "0000000\x00")
		copy(h[124:], fmt.Sprintf("%011o\x00", size))
		copy(h[136:], "14524413200\x00")
		copy(h[148:], "        ")
		h[156] = '0'
		copy(h[257:], "ustar\x0000")
		sum := 0
		for _, b := range h {
			sum += int(b)
		}
		copy(h[148:], fmt.Sprintf("%06o\x00 ", sum))
		out = append(out, h...)
		writes = append(writes, 512)
		var data []byte
		switch kind {
		case 0:
			data = genText(r, size)
		case 1:
			data = genRandom(r, size)
		case 2:
			data = make([]byte, size)
		case 3:
			data = genMixed(r, size)
		}
		out = append(out, data...)
		for rest := size; rest > 0; rest -= 32768 {
			writes = append(writes, min(rest, 32768))
		}
		if pad := (512 - size%512) % 512; pad > 0 {
			out = append(out, make([]byte, pad)...)
			writes = append(writes, pad)
		}
	}
	out = append(out, make([]byte, 1024)...)
	writes = append(writes, 512, 512)
	return out, writes
}

// genInput makes the input named by spec: "bytes:<hex>", "random:N:SEED", "text:N:SEED",
// "zeros:N:0", "periodic:N:SEED:P", "mixed:N:SEED", "tar:N:SEED" or
// "copies:N:SEED:SRC-DST-LEN.SRC-DST-LEN..." (random with copied pieces). For tar, it also
// returns kiln's write sizes.
func genInput(spec string) ([]byte, []int, error) {
	parts := strings.Split(spec, ":")
	if parts[0] == "bytes" {
		if len(parts) != 2 {
			return nil, nil, fmt.Errorf("bad spec %q", spec)
		}
		b := make([]byte, len(parts[1])/2)
		for i := range b {
			v, err := strconv.ParseUint(parts[1][2*i:2*i+2], 16, 8)
			if err != nil {
				return nil, nil, err
			}
			b[i] = byte(v)
		}
		return b, nil, nil
	}
	if len(parts) < 3 {
		return nil, nil, fmt.Errorf("bad spec %q", spec)
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil {
		return nil, nil, err
	}
	seed, err := strconv.ParseUint(parts[2], 10, 64)
	if err != nil {
		return nil, nil, err
	}
	r := &rng{s: seed}
	switch parts[0] {
	case "random":
		return genRandom(r, n), nil, nil
	case "text":
		return genText(r, n), nil, nil
	case "zeros":
		return make([]byte, n), nil, nil
	case "periodic":
		if len(parts) != 4 {
			return nil, nil, fmt.Errorf("bad spec %q", spec)
		}
		p, err := strconv.Atoi(parts[3])
		if err != nil {
			return nil, nil, err
		}
		return genPeriodic(r, n, p), nil, nil
	case "mixed":
		return genMixed(r, n), nil, nil
	case "tar":
		b, w := genTar(r, n)
		return b, w, nil
	case "copies":
		// Random bytes with pieces copied: parts[3] is "SRC-DST-LEN" triples joined by ".".
		if len(parts) != 4 {
			return nil, nil, fmt.Errorf("bad spec %q", spec)
		}
		b := genRandom(r, n)
		for _, triple := range strings.Split(parts[3], ".") {
			var src, dst, l int
			if _, err := fmt.Sscanf(triple, "%d-%d-%d", &src, &dst, &l); err != nil {
				return nil, nil, fmt.Errorf("bad spec %q: %v", spec, err)
			}
			if src+l > n || dst+l > n {
				return nil, nil, fmt.Errorf("bad spec %q: copy out of range", spec)
			}
			copy(b[dst:dst+l], b[src:src+l])
		}
		return b, nil, nil
	}
	return nil, nil, fmt.Errorf("bad spec %q", spec)
}

// genSplits turns a split spec into write sizes for an input of n bytes: "one" (a single
// write), "tar" (the tar writes), "fixed:K" (K-byte writes), "flush:K" (K-byte writes, each
// followed by a Flush), "first:K" (K bytes, then the rest) or "rand:SEED" (random sizes,
// mostly small, some up to 128 KiB).
func genSplits(spec string, n int, tarWrites []int) ([]int, error) {
	parts := strings.Split(spec, ":")
	switch parts[0] {
	case "one":
		return []int{n}, nil
	case "tar":
		if tarWrites == nil {
			return nil, fmt.Errorf("split %q needs a tar input", spec)
		}
		return tarWrites, nil
	}
	if len(parts) != 2 {
		return nil, fmt.Errorf("bad split %q", spec)
	}
	k, err := strconv.ParseUint(parts[1], 10, 64)
	if err != nil {
		return nil, err
	}
	var out []int
	switch parts[0] {
	case "fixed", "flush":
		if k == 0 {
			return nil, fmt.Errorf("bad split %q", spec)
		}
		for rest := n; rest > 0; rest -= int(k) {
			out = append(out, min(rest, int(k)))
		}
	case "first":
		out = append(out, min(n, int(k)))
		if n > int(k) {
			out = append(out, n-int(k))
		}
	case "rand":
		r := &rng{s: k}
		for rest := n; rest > 0; {
			var w int
			if r.below(8) == 0 {
				w = int(1 + r.below(131072))
			} else {
				w = int(1 + r.below(2048))
			}
			w = min(w, rest)
			out = append(out, w)
			rest -= w
		}
	default:
		return nil, fmt.Errorf("bad split %q", spec)
	}
	return out, nil
}
