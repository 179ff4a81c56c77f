package e2e

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// saveScreenshots writes the tabs' screenshots side by side to
// artifacts/name, for a person to look at; the folder is git-ignored.
func saveScreenshots(t *testing.T, name string, pages ...*page) {
	t.Helper()
	var shots []image.Image
	width, height := 0, 0
	for _, p := range pages {
		ctx, cancel := context.WithTimeout(p.ctx, waitTimeout)
		buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		cancel()
		if err != nil {
			t.Fatalf("screenshot of %s: %v", p.name, err)
		}
		shot, err := png.Decode(bytes.NewReader(buf))
		if err != nil {
			t.Fatalf("screenshot of %s: %v", p.name, err)
		}
		shots = append(shots, shot)
		width += shot.Bounds().Dx()
		height = max(height, shot.Bounds().Dy())
	}
	const gap = 4 // a grey line between the tabs
	width += gap * (len(shots) - 1)
	sheet := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(sheet, sheet.Bounds(), image.NewUniform(color.Gray{Y: 160}), image.Point{}, draw.Src)
	x := 0
	for _, shot := range shots {
		r := image.Rect(x, 0, x+shot.Bounds().Dx(), shot.Bounds().Dy())
		draw.Draw(sheet, r, shot, shot.Bounds().Min, draw.Src)
		x += shot.Bounds().Dx() + gap
	}
	var out bytes.Buffer
	if err := png.Encode(&out, sheet); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll("artifacts", 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("artifacts", name)
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: e2e/%s", path)
}
