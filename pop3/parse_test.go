package pop3

import "testing"

func TestParseNumber(t *testing.T) {
	t.Parallel()
	valid := map[string]int{"0": 0, "1": 1, "007": 7, "123456789": 123456789}
	for in, want := range valid {
		if got, ok := parseNumber(in); !ok || got != want {
			t.Errorf("parseNumber(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "-1", "+1", " 1", "1 ", "0x1", "1e3", "١", "1234567890", "99999999999999999999"} {
		if got, ok := parseNumber(in); ok {
			t.Errorf("parseNumber(%q) = %d, accepted", in, got)
		}
	}
}

func TestCheckUIDs(t *testing.T) {
	t.Parallel()
	seventy := ""
	for len(seventy) < 70 {
		seventy += "a"
	}
	valid := [][]MessageInfo{
		nil,
		{{UID: "a", Size: 0}},
		{{UID: "!~", Size: 10}, {UID: seventy, Size: 1}},
	}
	for _, msgs := range valid {
		if err := checkUIDs(msgs); err != nil {
			t.Errorf("checkUIDs(%v): %v", msgs, err)
		}
	}
	invalid := [][]MessageInfo{
		{{UID: ""}},
		{{UID: seventy + "a"}},
		{{UID: "has space"}},
		{{UID: "tab\t"}},
		{{UID: "del\x7f"}},
		{{UID: "ümlaut"}},
		{{UID: "dup"}, {UID: "dup"}},
		{{UID: "neg", Size: -1}},
	}
	for _, msgs := range invalid {
		if err := checkUIDs(msgs); err == nil {
			t.Errorf("checkUIDs(%+v) accepted", msgs)
		}
	}
}
