module github.com/wsroom/wsroom/examples

go 1.26

require github.com/wsroom/wsroom v0.0.0

replace github.com/wsroom/wsroom => ../
