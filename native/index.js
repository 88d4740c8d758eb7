'use strict';
module.exports = require('./build/Release/xlb_native.node');
