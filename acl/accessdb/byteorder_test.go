package accessdb

import "encoding/binary"

func bigEndian() binary.ByteOrder { return binary.BigEndian }
