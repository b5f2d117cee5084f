package maildir

import "syscall"

// oNoATime asks the kernel not to update a file's access time on read.
const oNoATime = syscall.O_NOATIME
