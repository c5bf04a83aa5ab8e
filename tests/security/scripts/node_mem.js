// Node memory bomb: keeps 1 MiB buffers forever; must end with MLE (never OK).
const keep = [];
for (;;) keep.push(Buffer.alloc(1 << 20, 1));
