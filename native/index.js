'use strict';
// Named exports spelled out so Node's ESM loader can see them in this CommonJS file.
const binding = require('./build/Release/xlb_native.node');

exports.BpfObject = binding.BpfObject;
exports.BpfMap = binding.BpfMap;
exports.BpfProgram = binding.BpfProgram;
exports.PerfReader = binding.PerfReader;
exports.xdpAttach = binding.xdpAttach;
exports.xdpDetach = binding.xdpDetach;
exports.xdpQuery = binding.xdpQuery;
exports.tcAttach = binding.tcAttach;
exports.tcDetach = binding.tcDetach;
exports.tcQuery = binding.tcQuery;
exports.tcHookDestroy = binding.tcHookDestroy;
exports.tcPriority = binding.tcPriority;
exports.tcxQuery = binding.tcxQuery;
exports.ifNameToIndex = binding.ifNameToIndex;
exports.inNetns = binding.inNetns;
exports.possibleCpus = binding.possibleCpus;
exports.lockFile = binding.lockFile;
exports.closeFd = binding.closeFd;
