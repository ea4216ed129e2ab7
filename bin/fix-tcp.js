#!/usr/bin/env node
import "../packages/fix/dist/bin-fix-tcp.js"
