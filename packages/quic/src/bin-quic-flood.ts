#!/usr/bin/env node
import { main } from './flood.js'

process.exitCode = await main()
