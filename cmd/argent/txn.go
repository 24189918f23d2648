package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/argent-kv/argent"
)

// TxnCmd commits one atomic batch from a file and/or flags.
type TxnCmd struct {
	File         string   `short:"f" help:"JSON or TOML file (by extension; - for JSON on stdin) in the API's txn shape: conditions [{key, mod_index}] and ops [{op, key, value (base64) or text}]." placeholder:"FILE" type:"existingfile"`
	Put          []string `sep:"none" help:"Put KEY=VALUE (repeatable)." placeholder:"KEY=VALUE"`
	Delete       []string `sep:"none" help:"Delete KEY (repeatable)." placeholder:"KEY"`
	DeletePrefix []string `sep:"none" help:"Delete every key under PREFIX (repeatable)." placeholder:"PREFIX"`
	If           []string `sep:"none" help:"Condition KEY=MODINDEX: the key's mod index must be MODINDEX, 0 meaning absent (repeatable)." placeholder:"KEY=MODINDEX"`
	ServerFlag
}

// b64 is a value in base64, in JSON and TOML alike.
type b64 []byte

// UnmarshalText decodes standard base64.
func (b *b64) UnmarshalText(text []byte) error {
	v, err := base64.StdEncoding.DecodeString(string(text))
	if err != nil {
		return fmt.Errorf("value is not base64: %w", err)
	}
	*b = v
	return nil
}

// txnFile is the file form of a txn: the API's shape, plus "text" for a
// value written as text.
type txnFile struct {
	Conditions []struct {
		Key      string `json:"key" toml:"key"`
		ModIndex uint64 `json:"mod_index" toml:"mod_index"`
	} `json:"conditions" toml:"conditions"`
	Ops []struct {
		Op    string  `json:"op" toml:"op"`
		Key   string  `json:"key" toml:"key"`
		Value b64     `json:"value" toml:"value"`
		Text  *string `json:"text" toml:"text"`
	} `json:"ops" toml:"ops"`
}

// batch returns the batch the file and flags describe: the file's
// conditions and ops first, then the flags'.
func (c *TxnCmd) batch(io *stdio) (argent.Batch, error) {
	var b argent.Batch
	if c.File != "" {
		f, err := c.readFile(io)
		if err != nil {
			return b, err
		}
		for _, cd := range f.Conditions {
			b.Conditions = append(b.Conditions, argent.Condition{Key: []byte(cd.Key), ModIndex: argent.Index(cd.ModIndex)})
		}
		for i, op := range f.Ops {
			o := argent.Op{Key: []byte(op.Key)}
			switch op.Op {
			case "put":
				o.Type, o.Value = argent.OpPut, []byte(op.Value)
				if op.Text != nil {
					o.Value = []byte(*op.Text)
				}
				if o.Value == nil {
					o.Value = []byte{}
				}
			case "delete":
				o.Type = argent.OpDelete
			case "delete_prefix":
				o.Type = argent.OpDeletePrefix
			default:
				return b, fmt.Errorf("%s: op %d: %q is not put, delete or delete_prefix", c.File, i+1, op.Op)
			}
			b.Ops = append(b.Ops, o)
		}
	}
	for _, kv := range c.Put {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return b, fmt.Errorf("--put %s: want KEY=VALUE", shortKey(kv))
		}
		b.Ops = append(b.Ops, argent.Op{Type: argent.OpPut, Key: []byte(k), Value: []byte(v)})
	}
	for _, k := range c.Delete {
		b.Ops = append(b.Ops, argent.Op{Type: argent.OpDelete, Key: []byte(k)})
	}
	for _, k := range c.DeletePrefix {
		b.Ops = append(b.Ops, argent.Op{Type: argent.OpDeletePrefix, Key: []byte(k)})
	}
	for _, kv := range c.If {
		i := strings.LastIndexByte(kv, '=')
		if i < 0 {
			return b, fmt.Errorf("--if %s: want KEY=MODINDEX", shortKey(kv))
		}
		n, err := strconv.ParseUint(kv[i+1:], 10, 64)
		if err != nil {
			return b, fmt.Errorf("--if %s: %q is not a mod index", shortKey(kv), kv[i+1:])
		}
		b.Conditions = append(b.Conditions, argent.Condition{Key: []byte(kv[:i]), ModIndex: argent.Index(n)})
	}
	if len(b.Ops) == 0 {
		return b, fmt.Errorf("no operations: give --put, --delete, --delete-prefix or --file")
	}
	for _, op := range b.Ops {
		if len(op.Key) == 0 && op.Type != argent.OpDeletePrefix {
			return b, fmt.Errorf("%s: key is empty", op.Type)
		}
	}
	for _, cd := range b.Conditions {
		if len(cd.Key) == 0 {
			return b, fmt.Errorf("condition: key is empty")
		}
	}
	return b, nil
}

func (c *TxnCmd) readFile(io *stdio) (txnFile, error) {
	var f txnFile
	var data []byte
	var err error
	if c.File == "-" {
		var buf bytes.Buffer
		_, err = buf.ReadFrom(io.in)
		data = buf.Bytes()
	} else {
		data, err = os.ReadFile(c.File)
	}
	if err != nil {
		return f, fmt.Errorf("read %s: %w", c.File, err)
	}
	if strings.EqualFold(filepath.Ext(c.File), ".toml") {
		md, err := toml.Decode(string(data), &f)
		if err != nil {
			return f, fmt.Errorf("%s: %w", c.File, err)
		}
		if un := md.Undecoded(); len(un) > 0 {
			return f, fmt.Errorf("%s: unknown field %s", c.File, un[0])
		}
		return f, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return f, fmt.Errorf("%s: %w", c.File, err)
	}
	return f, nil
}

// Run commits the batch and prints its index; a failed condition is an
// error naming the key and its mod index.
func (c *TxnCmd) Run(ctx context.Context, io *stdio) error {
	b, err := c.batch(io)
	if err != nil {
		return exitError{code: 1, msg: "txn: " + oneLine(err.Error())}
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	idx, err := cl.Txn(ctx, b)
	if err != nil {
		return opError("txn", "", err)
	}
	fmt.Fprintf(io.out, "index %d\n", idx)
	return nil
}
