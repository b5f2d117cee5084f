package pickup

import (
	"bufio"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

var jsonUnmarshal = json.Unmarshal

func TestParseRequest(t *testing.T) {
	tests := []struct {
		line    string
		wantErr bool
	}{
		{`{"rcpts":["alice"],"size":3}`, false},
		{`{"from":"","rcpts":["a@b.example"],"size":0}`, false},
		{`{"from":"x@y.example","full_name":"X Y","rcpts":["a","b"],"size":10}`, false},
		{``, true},
		{`not json`, true},
		{`{"rcpts":[],"size":3}`, true},
		{`{"size":3}`, true},
		{`{"rcpts":["a"],"size":-1}`, true},
		{`{"rcpts":["a"],"size":1,"uid":0}`, true}, // the caller never names itself
		{`{"rcpts":["a"],"size":1} {}`, true},
		{`{"rcpts":"a","size":1}`, true},
	}
	for _, tt := range tests {
		_, err := ParseRequest([]byte(tt.line))
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseRequest(%q) error = %v, want error %v", tt.line, err, tt.wantErr)
		}
		if err != nil && !errors.Is(err, errMalformed) {
			t.Errorf("ParseRequest(%q) error %v is not errMalformed", tt.line, err)
		}
	}
}

func TestReadRequestBounds(t *testing.T) {
	long := `{"rcpts":["` + strings.Repeat("a", MaxHeaderLine) + `"],"size":1}` + "\n"
	if _, _, err := readRequest(bufio.NewReader(strings.NewReader(long))); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("over-long request line: err = %v", err)
	}
	if _, _, err := readRequest(bufio.NewReader(strings.NewReader(`{"rcpts":["a"],"size":1}`))); err == nil {
		t.Error("request line without newline accepted")
	}
	r, n, err := readRequest(bufio.NewReader(strings.NewReader("{\"rcpts\":[\"a\"],\"size\":1}\nX")))
	if err != nil || n != 25 || r.Size != 1 {
		t.Errorf("readRequest = %+v, %d, %v", r, n, err)
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(`{"rcpts":["alice"],"size":3}`))
	f.Add([]byte(`{"from":"","full_name":"Cron Daemon","rcpts":["root","a@b.example"],"size":0}`))
	f.Add([]byte(`{"rcpts":[null],"size":1e3}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := ParseRequest(line)
		if err != nil {
			return
		}
		if r.Size < 0 || len(r.Rcpts) == 0 {
			t.Fatalf("accepted %+v", r)
		}
		// What parses survives its own encoding.
		back, err := ParseRequest(encodeRequest(r)[:len(encodeRequest(r))-1])
		if err != nil || back.Size != r.Size || len(back.Rcpts) != len(r.Rcpts) {
			t.Fatalf("round trip of %+v: %+v, %v", r, back, err)
		}
	})
}
