#!/usr/bin/env node
import "../packages/ab/dist/bin-ab-arbitrate.js"
