#!/usr/bin/env node
import { main } from './plot.js'

process.exitCode = await main()
