package maildir

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxHeaderScan bounds how much of a message's header section DeliverMail
// reads to find Delivered-To and Return-Path fields. Like Postfix's
// header_size_limit, what lies beyond is passed through unexamined.
const maxHeaderScan = 256 << 10

// ErrMailLoop is returned by DeliverMail when the message already carries
// a Delivered-To field naming one of its mailboxes: it has been here
// before (Postfix local(8) refuses such mail the same way).
var ErrMailLoop = errors.New("maildir: mail loop")

// DeliverMail is final delivery (RFC 5321 §4.4): each mailbox gets its own
// copy that starts with "Return-Path: <from>" (from is the envelope sender,
// "" for the null sender) and "Delivered-To: local@domain"; Return-Path
// fields the message brought are removed. If the header section already
// holds a Delivered-To for one of the mailboxes, nothing is delivered and
// the error wraps ErrMailLoop. As with Deliver, the message appears in
// every new/ or in none.
func (s *Store) DeliverMail(ctx context.Context, from string, mailboxes []Address, r io.Reader) (names []string, err error) {
	if len(mailboxes) == 0 {
		return nil, errors.New("maildir: deliver: no mailboxes")
	}
	if strings.ContainsAny(from, "\r\n<>") {
		return nil, fmt.Errorf("maildir: deliver: bad envelope sender %q", from)
	}
	br := bufio.NewReaderSize(r, 4096)
	header, delivered, err := scanHeader(br)
	if err != nil {
		return nil, fmt.Errorf("maildir: deliver: read header: %w", err)
	}
	prefixes := make([][]byte, len(mailboxes))
	for i, a := range mailboxes {
		rcpt := strings.ToLower(a.Local + "@" + a.Domain)
		if delivered[rcpt] {
			return nil, fmt.Errorf("maildir: deliver to %s: %w (Delivered-To already present)", rcpt, ErrMailLoop)
		}
		prefixes[i] = []byte("Return-Path: <" + from + ">\r\nDelivered-To: " + a.Local + "@" + a.Domain + "\r\n")
	}
	return s.deliverEach(ctx, mailboxes, prefixes, io.MultiReader(bytes.NewReader(header), br))
}

// scanHeader reads the header section (up to and including the empty line
// that ends it, or maxHeaderScan octets) and returns it without its
// Return-Path fields, with the lowercased addresses of its Delivered-To
// fields. A field continues on lines starting with a space or tab
// (RFC 5322 §2.2.3).
func scanHeader(br *bufio.Reader) ([]byte, map[string]bool, error) {
	var out bytes.Buffer
	delivered := map[string]bool{}
	var field []byte // the current field, continuation lines included
	flush := func() {
		name, value, _ := bytes.Cut(field, []byte(":"))
		switch strings.ToLower(string(bytes.TrimSpace(name))) {
		case "return-path":
			// Replaced by ours (RFC 5321 §4.4: the final delivery adds it).
		case "delivered-to":
			v := strings.ToLower(strings.Join(strings.Fields(string(value)), ""))
			delivered[strings.TrimSuffix(strings.TrimPrefix(v, "<"), ">")] = true
			out.Write(field)
		default:
			out.Write(field)
		}
		field = field[:0]
	}
	read := 0
	for read < maxHeaderScan {
		line, err := br.ReadSlice('\n')
		read += len(line)
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') && len(field) > 0 {
			field = append(field, line...)
		} else {
			if len(field) > 0 {
				flush()
			}
			if bytes.Equal(line, []byte("\r\n")) || bytes.Equal(line, []byte("\n")) {
				out.Write(line)
				return out.Bytes(), delivered, nil
			}
			field = append(field, line...)
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			// A header line longer than the reader's buffer: take it whole.
			for errors.Is(err, bufio.ErrBufferFull) && read < maxHeaderScan {
				line, err = br.ReadSlice('\n')
				read += len(line)
				field = append(field, line...)
			}
			if err != nil && !errors.Is(err, bufio.ErrBufferFull) && err != io.EOF {
				return nil, nil, err
			}
			if err == io.EOF {
				flush()
				return out.Bytes(), delivered, nil
			}
		case err == io.EOF:
			if len(field) > 0 {
				flush()
			}
			return out.Bytes(), delivered, nil
		case err != nil:
			return nil, nil, err
		}
	}
	// Header section longer than maxHeaderScan: the rest passes unexamined.
	out.Write(field)
	return out.Bytes(), delivered, nil
}
