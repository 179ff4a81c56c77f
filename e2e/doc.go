// Package e2e drives the example programs in examples/ through a real,
// headless Chromium: it builds each demo, starts it on a free loopback port,
// opens its page and checks what a person using the page would see.
//
// The package holds only tests. See README.md for how to run them.
package e2e
