// The unit project resolves @xlb/native here: anything kernel-side a unit test loads fails it.
throw new Error('a unit test loaded the native addon (@xlb/native): test/unit runs without the kernel');
