module kiln/goflate-gen

go 1.23
