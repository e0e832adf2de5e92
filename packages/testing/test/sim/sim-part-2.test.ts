import { simulationSuite } from './suite.js';

simulationSuite(1, 2);
