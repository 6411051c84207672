export {
  CircuitBreaker,
  type CircuitBreakerEvents,
  type CircuitBreakerOptions,
  type CircuitBreakerSnapshot,
  CircuitState,
  type FailureEvent,
  type StateChangeEvent,
  type TransitionReason,
} from "./circuit-breaker.js";
export { CircuitOpenError, isCircuitOpenError } from "./errors.js";
export {
  assessHealth,
  type ComponentReport,
  type ComponentStatus,
  type HealthAssessment,
  type HealthInput,
  HealthModel,
  type HealthModelOptions,
  type HealthReport,
  type HealthView,
} from "./health-model.js";
export {
  type CanServeRule,
  type ComponentHealth,
  HealthMonitor,
  type HealthMonitorOptions,
  type HealthSnapshot,
  type HealthStatus,
  overallStatus,
} from "./health-monitor.js";
export { errorMessage, type Unsubscribe } from "./listeners.js";
export { addressOf, errorCode, logTransitions, type TransitionLogOptions } from "./transition-log.js";
