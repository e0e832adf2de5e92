import { simulationSuite } from './suite.js';

simulationSuite(0, 2);
