package main

import (
	"strings"
	"testing"
)

func TestTablesSplitChatAndEchoScenarios(t *testing.T) {
	in := strings.Join([]string{
		"S4\tmelody\t" + `{"mode":"chat","deliveries_per_s":100,"closed_by_server":{},"silent":1,"silent_cut":0,"silent_cut_after_ms":-1,"silent_cut_by":""}`,
		"S4\tchatroom\t" + `{"mode":"chat","deliveries_per_s":300,"disconnected":4,"closed_by_server":{"1013":3},"reset_by_server":1,"silent":1,"silent_cut":1,"silent_cut_after_ms":5120,"silent_cut_by":"fin"}`,
		"S4\tchatroom\t" + `{"mode":"chat","deliveries_per_s":500,"disconnected":2,"closed_by_server":{"1013":1,"1001":1},"reset_by_server":0,"silent":1,"silent_cut":1,"silent_cut_after_ms":5140,"silent_cut_by":"rst"}`,
		"S6\techo\t" + `{"mode":"echo","clients":20,"size":16777216,"read_rate":32768,"full_replies":0,"closed_by_server":{},"server_cut":20,"server_cut_after_ms":10500,"server_cut_by":"fin","server_rss_before_kib":8192,"server_rss_peak_kib":870400,"elapsed_s":60.1,"timed_out":true}`,
	}, "\n")
	var out strings.Builder
	if err := run(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	tables := strings.Split(strings.TrimSpace(out.String()), "\n\n")
	if len(tables) != 2 {
		t.Fatalf("want a chat and an echo table, got:\n%s", out.String())
	}
	chat, echo := tables[0], tables[1]
	for _, want := range []string{
		"| silent cut ms | cut by |",
		// Two chatroom runs: the median of each code (1001: 0 and 1;
		// 1013: 3 and 1) and of the cut times; every kind seen.
		"| S4 | chatroom | 2 | 400 | 4.00 |",
		"| 3 | 1001×0.5 1013×2 | 0 | 5130 | fin/rst |",
		"| S4 | melody | 1 | 100 | 1.00 |",
		"| 0 | - | 0 | never | - |",
	} {
		if !strings.Contains(chat, want) {
			t.Errorf("chat table lacks %q:\n%s", want, chat)
		}
	}
	for _, want := range []string{
		"| scenario | server | runs | clients | size MiB | read KiB/s | full replies | closed by server |",
		"| S6 | echo | 1 | 20 | 16.0 | 32 | 0 | - | 0 | 20 | fin | 10.5 | 8.0 | 850.0 |",
	} {
		if !strings.Contains(echo, want) {
			t.Errorf("echo table lacks %q:\n%s", want, echo)
		}
	}
	if strings.Contains(echo, "deliveries/s") || strings.Contains(chat, "S6") {
		t.Errorf("scenarios in the wrong table:\n%s", out.String())
	}
}
